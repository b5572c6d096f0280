"""Background jobs: declared once, run by arq workers (REDIS_URL set) or inside `serve` (the embedded default).

Declare a job in `apps/<app>/jobs.py` as a plain sync function taking ids (never objects) as keyword arguments:

    @job("mail.process_message")
    def process_message(*, message_id: int) -> None:
        services.inbound_email_process(message_id=message_id)

and enqueue it from a service with `enqueue("mail.process_message", message_id=m.id)`: it is sent only after the
current transaction commits. arq may run a job twice, so every job must be idempotent. Work that must never be
lost is also recorded in the database first (an outbox) and swept by a periodic job: the queue is only a nudge.

Periodic jobs use arq's cron fields: `@periodic("mail.sweep", minute=set(range(60)))`.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.db import close_old_connections, transaction

from apps.core import metrics, runtime

log = logging.getLogger(__name__)

JobFunc = Callable[..., Any]


@dataclass(frozen=True)
class Periodic:
    name: str
    schedule: dict[str, Any] = field(default_factory=dict)  # arq.cron fields: minute, hour, ...


_jobs: dict[str, JobFunc] = {}
_periodic: list[Periodic] = []
_worker_tasks: list[Callable[[], Any]] = []


def job(name: str) -> Callable[[JobFunc], JobFunc]:
    def register(func: JobFunc) -> JobFunc:
        if name in _jobs and _jobs[name] is not func:
            raise ValueError(f"job {name!r} declared twice")
        _jobs[name] = func
        return func

    return register


def periodic(name: str, **schedule: Any) -> Callable[[JobFunc], JobFunc]:
    """A job (taking no arguments) that runs on a schedule given in arq.cron's fields."""

    def register(func: JobFunc) -> JobFunc:
        job(name)(func)
        _periodic.append(Periodic(name=name, schedule=schedule))
        return func

    return register


def worker_task(func: Callable[[], Any]) -> Callable[[], Any]:
    """A coroutine function that every worker (arq's, or serve's in-process one) runs beside its jobs for as long as
    it runs: for work woken by something other than the queue (apps.webhooks' PostgreSQL LISTEN)."""
    _worker_tasks.append(func)
    return func


def registered_jobs() -> dict[str, JobFunc]:
    return dict(_jobs)


def registered_periodic() -> list[Periodic]:
    return list(_periodic)


# --- Enqueueing ------------------------------------------------------------------------------------------------


def enqueue(name: str, *, job_id: str | None = None, defer_s: float | None = None, **kwargs: Any) -> None:
    """Run job `name(**kwargs)` in the background once the current transaction commits.

    `job_id` makes the enqueue unique while a job with that id is queued or its result is kept (arq's semantics);
    `defer_s` starts it that many seconds later.
    """
    if name not in _jobs:
        raise KeyError(f"unknown job {name!r}")
    transaction.on_commit(lambda: _dispatch(name, kwargs, job_id, defer_s), robust=True)


def enqueue_many(name: str, kwargs_list: list[dict[str, Any]]) -> None:
    """`enqueue` for a batch: one job `name(**kwargs)` per item, all sent together once the current transaction
    commits (with Redis: one round trip for the batch, not three per job). For the SMTP group commit's receipts."""
    if name not in _jobs:
        raise KeyError(f"unknown job {name!r}")
    if kwargs_list:
        transaction.on_commit(lambda: _dispatch_many(name, kwargs_list), robust=True)


def enqueue_many_committed(name: str, kwargs_list: list[dict[str, Any]]) -> None:
    """`enqueue_many` for rows already committed outside Django's transactions (apps.mail.receipts: the SMTP
    receipts' insert on the server's loop): sent now, never waited for; the caller's outbox sweep covers a send
    that fails."""
    if name not in _jobs:
        raise KeyError(f"unknown job {name!r}")
    if kwargs_list:
        _dispatch_many(name, kwargs_list)


def enqueue_coalesced(name: str, *, key: str, window_s: float = 1.0, **kwargs: Any) -> None:
    """Like `enqueue`, for jobs that recompute something whole (an allow-list, a summary): a burst of changes
    collapses into at most one run per `key` per `window_s`, started at the window's end so it sees them all."""
    window = int(time.time() // window_s)
    enqueue(name, job_id=f"{name}:{key}:{window}", defer_s=window_s, **kwargs)


def _dispatch(name: str, kwargs: dict[str, Any], job_id: str | None, defer_s: float | None) -> None:
    loop = runtime.main_loop()
    if settings.PARKGATE_JOBS_BACKEND == "arq":
        runtime.submit(lambda: _arq_enqueue(name, kwargs, job_id, defer_s))
    elif _inprocess_queue is not None and loop is not None:
        if job_id is not None:
            if job_id in _inprocess_pending:
                return
            _inprocess_pending.add(job_id)
        loop.call_soon_threadsafe(loop.call_later, defer_s or 0, _inprocess_queue.put_nowait, (name, kwargs, job_id))
    else:
        # No server loop (a management command or a test without Redis): run it now, in this thread.
        run_job(name, kwargs)


def _dispatch_many(name: str, kwargs_list: list[dict[str, Any]]) -> None:
    if settings.PARKGATE_JOBS_BACKEND == "arq":
        batch = [(name, kwargs) for kwargs in kwargs_list]
        runtime.submit(lambda: _arq_batches.send(batch))
    else:
        for kwargs in kwargs_list:
            _dispatch(name, kwargs, None, None)


_arq_pool = None
_arq_pool_loop = None


@asynccontextmanager
async def _arq() -> AsyncIterator[Any]:
    """The arq pool: the server's own on its loop; on a short-lived loop (management command), one closed after use."""
    global _arq_pool, _arq_pool_loop
    from arq import create_pool
    from arq.connections import RedisSettings

    loop = asyncio.get_running_loop()
    if loop is runtime.main_loop():
        if _arq_pool is None or _arq_pool_loop is not loop:
            _arq_pool = await create_pool(
                RedisSettings.from_dsn(settings.REDIS_URL), default_queue_name=settings.ARQ_QUEUE_NAME
            )
            _arq_pool_loop = loop
        yield _arq_pool
        return
    pool = await create_pool(RedisSettings.from_dsn(settings.REDIS_URL), default_queue_name=settings.ARQ_QUEUE_NAME)
    try:
        yield pool
    finally:
        await pool.aclose()


async def _arq_enqueue(name: str, kwargs: dict[str, Any], job_id: str | None, defer_s: float | None) -> None:
    async with _arq() as pool:
        await pool.enqueue_job(name, _job_id=job_id, _defer_by=defer_s, **kwargs)


async def _arq_enqueue_many(jobs: list[tuple[str, dict[str, Any]]]) -> None:
    """What ArqRedis.enqueue_job writes for a job without a `_job_id` (the pickled job under arq:job:<uuid4>, the id
    in the queue's sorted set), for all `jobs` (name, kwargs) in one MULTI/EXEC. enqueue_job's WATCH + EXISTS (two
    more round trips per job) only guards ids chosen by the caller; fresh uuid4 ids cannot already exist."""
    from arq.constants import job_key_prefix
    from arq.jobs import serialize_job
    from arq.utils import timestamp_ms

    async with _arq() as pool:
        now = timestamp_ms()
        async with pool.pipeline(transaction=True) as pipe:
            for name, kwargs in jobs:
                job_id = uuid4().hex
                job = serialize_job(name, (), kwargs, None, now, serializer=pool.job_serializer)
                pipe.psetex(job_key_prefix + job_id, pool.expires_extra_ms, job)
                pipe.zadd(pool.default_queue_name, {job_id: now})
            await pipe.execute()


class _ArqBatches:
    """Batches of jobs sent to Redis one MULTI/EXEC at a time: batches arriving while one is in flight wait and go
    together in the next. Under the SMTP server's load (a small batch per group commit, hundreds a second) this
    makes a few large round trips instead of many small ones. Per loop: a loop that stopped mid-send (a test's)
    leaves nothing stuck for the next."""

    def __init__(self):
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pending: list[tuple[str, dict[str, Any]]] = []
        self.sending = False

    async def send(self, jobs: list[tuple[str, dict[str, Any]]]) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self.loop:
            self.loop, self.pending, self.sending = loop, [], False
        self.pending.extend(jobs)
        if self.sending:
            return  # the send in flight takes these next
        self.sending = True
        try:
            while self.pending:
                batch, self.pending = self.pending, []
                try:
                    await _arq_enqueue_many(batch)
                except Exception:  # the callers' outbox sweeps cover jobs that were not sent
                    log.exception("%s jobs not sent to Redis", len(batch))
        finally:
            self.sending = False


_arq_batches = _ArqBatches()


# --- Running ---------------------------------------------------------------------------------------------------


def run_job(name: str, kwargs: dict[str, Any]) -> Any:
    """Run one job in this thread with fresh database connections."""
    close_old_connections()
    started, outcome = time.perf_counter(), "failed"
    try:
        result = _jobs[name](**kwargs)
        outcome = "done"
        return result
    finally:
        metrics.job_seconds.labels(name).observe(time.perf_counter() - started)
        metrics.jobs_total.labels(name, outcome).inc()
        close_old_connections()


async def queue_depth() -> int:
    """Jobs waiting to run: arq's queue in Redis (shared by every process), else this process's own queue."""
    if settings.PARKGATE_JOBS_BACKEND == "arq":
        async with _arq() as pool:
            return await pool.zcard(settings.ARQ_QUEUE_NAME)
    return _inprocess_queue.qsize() if _inprocess_queue is not None else 0


async def run_job_async(name: str, kwargs: dict[str, Any]) -> Any:
    # Each job gets its own thread (not the consumers' shared one), so a slow job never delays a barrier.
    async with ThreadSensitiveContext():
        return await sync_to_async(run_job)(name, kwargs)


_inprocess_queue: asyncio.Queue | None = None
_inprocess_pending: set[str] = set()  # job ids queued in-process and not started yet (arq's uniqueness, in small)


async def run_inprocess_worker(*, concurrency: int = 2) -> None:
    """The embedded default's worker: runs enqueued and periodic jobs on the server's loop until cancelled."""
    global _inprocess_queue
    _inprocess_queue = asyncio.Queue()

    async def consume() -> None:
        while True:
            name, kwargs, job_id = await _inprocess_queue.get()
            _inprocess_pending.discard(job_id)
            try:
                await run_job_async(name, kwargs)
            except Exception:
                log.exception("job %s failed", name)

    async def schedule(p: Periodic) -> None:
        from arq.cron import next_cron

        while True:
            now = datetime.now(UTC)
            next_at = next_cron(now, **p.schedule)
            await asyncio.sleep(max(0.0, (next_at - now).total_seconds()))
            _inprocess_queue.put_nowait((p.name, {}, None))

    tasks = [asyncio.create_task(consume()) for _ in range(concurrency)]
    tasks += [asyncio.create_task(schedule(p)) for p in _periodic]
    tasks += [asyncio.create_task(task()) for task in _worker_tasks]
    try:
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        _inprocess_queue = None


def arq_worker_settings() -> dict[str, Any]:
    """Keyword arguments for arq.Worker: every registered job and periodic job."""
    from arq import cron, func
    from arq.connections import RedisSettings

    def make(name: str):
        async def run(ctx: dict, **kwargs: Any) -> Any:
            return await run_job_async(name, kwargs)

        run.__qualname__ = run.__name__ = name.replace(".", "_")
        return run

    coros = {name: make(name) for name in _jobs}

    async def on_startup(ctx: dict) -> None:
        runtime.set_main_loop(asyncio.get_running_loop())
        ctx["parkgate_tasks"] = [asyncio.create_task(task()) for task in _worker_tasks]

    async def on_shutdown(ctx: dict) -> None:
        for task in ctx.get("parkgate_tasks", []):
            task.cancel()

    return {
        "functions": [func(coro, name=name) for name, coro in coros.items()],
        "cron_jobs": [cron(coros[p.name], name=f"cron:{p.name}", **p.schedule) for p in _periodic],
        "redis_settings": RedisSettings.from_dsn(settings.REDIS_URL),
        "queue_name": settings.ARQ_QUEUE_NAME,
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "max_tries": 5,
        "poll_delay": 0.05,  # arq polls Redis for queued jobs; the 0.5 s default delays every email booking
    }
