"""Webhook jobs: fan-out, the per-endpoint senders and the sweep; and the listener that wakes the fan-out.

Every event's insert NOTIFYs `parkgate_webhooks` (a trigger, delivered at commit), and each worker LISTENs: events
are fanned out within milliseconds of their commit, whichever path wrote them (a booking service, the lane's
one-statement decision on the server's loop, the no-show sweep). The periodic sweep covers a notification lost
while a listener was reconnecting.
"""

import asyncio
import logging

import psycopg

from apps.core import aiodb
from apps.core.jobs import job, periodic, run_job_async, worker_task
from apps.webhooks import dispatch

log = logging.getLogger(__name__)
CHANNEL = "parkgate_webhooks"


@job("webhooks.fan_out")
def fan_out() -> None:
    dispatch.fan_out()


@job("webhooks.drain")
def drain(*, endpoint_id: int) -> None:
    dispatch.drain(endpoint_id)


@periodic("webhooks.sweep", second={0, 30})
def sweep() -> None:
    dispatch.sweep()


class _Coalesced:
    """Runs the fan-out job now, or once more after the run in progress: a burst of notifications costs one or two
    runs, and none is missed."""

    def __init__(self) -> None:
        self.running, self.again = False, False

    async def __call__(self) -> None:
        if self.running:
            self.again = True
            return
        self.running = True
        try:
            while True:
                self.again = False
                try:
                    await run_job_async("webhooks.fan_out", {})
                except Exception:
                    log.exception("webhook fan-out failed")
                if not self.again:
                    return
        finally:
            self.running = False


@worker_task
async def listen_for_events() -> None:
    """LISTEN for new events and fan them out; reconnects (1 s) when PostgreSQL goes away."""
    wake, runs = _Coalesced(), set()

    def start() -> None:
        task = asyncio.create_task(wake())
        runs.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(runs.discard)

    while True:
        try:
            conn = await psycopg.AsyncConnection.connect(**aiodb.connect_kwargs("parkgate-webhooks"), autocommit=True)
            async with conn:
                await conn.execute(f"LISTEN {CHANNEL}")
                start()  # what committed while nobody listened
                async for _ in conn.notifies():
                    start()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("webhook listener: %s; listening again in 1 s", exc)
            await asyncio.sleep(1)
