"""The bridge from sync code (services, on_commit callbacks) to the process's event loop.

Services run in worker threads (via sync_to_async) or in plain sync contexts (management commands, tests). When
they need async I/O after commit (publishing an event, enqueueing a job) they must not block the thread that
holds the database: Channels runs every consumer's ORM calls on one shared thread, and the barrier decision
path is on it. `submit` schedules the coroutine on the server's loop and returns at once.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from asgiref.sync import async_to_sync

log = logging.getLogger(__name__)

_main_loop: asyncio.AbstractEventLoop | None = None
_tasks: set[asyncio.Future] = set()  # strong references: the loop only keeps weak ones


def set_main_loop(loop: asyncio.AbstractEventLoop | None) -> None:
    """Called by `serve` and `worker` once their loop runs."""
    global _main_loop
    _main_loop = loop


def main_loop() -> asyncio.AbstractEventLoop | None:
    loop = _main_loop
    return loop if loop is not None and loop.is_running() and not loop.is_closed() else None


def submit(coro_factory: Callable[[], Awaitable[object]]) -> None:
    """Run `coro_factory()` without waiting for it: on the server's loop if there is one, else right here."""
    loop = main_loop()
    if loop is None:
        # No long-lived loop (a management command, a test): just run it to completion. On a fresh loop when this
        # thread has none: async_to_sync would hop back onto a stopped server loop (arq's worker after losing Redis)
        # and wait forever, so the process could never exit to be restarted.
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(_guarded(coro_factory))
        else:
            async_to_sync(_guarded)(coro_factory)
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        fut = loop.create_task(_guarded(coro_factory))
    else:
        fut = asyncio.run_coroutine_threadsafe(_guarded(coro_factory), loop)
    _tasks.add(fut)
    fut.add_done_callback(_tasks.discard)


async def _guarded(coro_factory: Callable[[], Awaitable[object]]) -> None:
    try:
        await coro_factory()
    except Exception:
        log.exception("background call failed")


async def drain(wait_s: float = 5.0) -> None:
    """Wait (bounded) for submitted calls to finish: used at shutdown."""
    pending = [asyncio.wrap_future(t) if not isinstance(t, asyncio.Task) else t for t in list(_tasks)]
    if pending:
        await asyncio.wait(pending, timeout=wait_s)
