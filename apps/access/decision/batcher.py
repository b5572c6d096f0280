"""The loop's side of the route: reads waiting on the server's event loop are handed, a batch at a time, to a
decision thread, which decides the batch in one transaction (batch.plate_reads_decide).

A lone read goes at once, alone. Reads that arrive while every decision thread is busy wait, and the next free
thread takes them together (at most BATCH_MOST; no two of one vehicle or one read_id, the second must see the
first's rows): one thread hop and one transaction per batch rather than per read, so a burst costs fewer round trips
and commits. Each decision thread keeps its own database connection, warm, with the statements prepared.
"""

import asyncio
import contextlib
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import psycopg
from django.conf import settings
from django.db import DatabaseError, connection, connections

from apps.access.decision.batch import PlateReadIn, plate_reads_decide
from apps.core import aiodb

# Reads decided in one transaction at most: a bigger batch holds its vehicles' locks longer.
BATCH_MOST = 32

THREADS = max(1, settings.DECISION_THREADS)
_threads = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="decide")


async def decide(
    *,
    device_id: str,
    read_id: str,
    lane_id: int,
    plate: str,
    score: float,
    captured_at: datetime,
    candidates: list | None = None,
    region: str = "",
    vehicle: dict | None = None,
    retransmit: bool = False,
    local_action: str = "",
    with_command: bool = True,
) -> dict:
    """Decide a plate read: its `decision` frame, once committed (a decision the controller gets is never lost).
    Django's DatabaseError when the database cannot decide it now; UnknownLane for a lane deleted meanwhile."""
    read = PlateReadIn(
        device_id=device_id, read_id=read_id, lane_id=lane_id, plate=plate, score=score, captured_at=captured_at,
        candidates=candidates, region=region, vehicle=vehicle, retransmit=retransmit, local_action=local_action,
        with_command=with_command,
    )  # fmt: skip
    return await _batchers.get().decide(read)


def _on_thread(batch: list[PlateReadIn]) -> list[dict | Exception]:
    """A decision thread's connection serves it from one batch to the next (nothing else would close it); a batch
    that meets a database error hands it back, so a broken one (database restarted) is replaced."""
    _holding.add(threading.get_ident())
    try:
        _hang_ups_dropped()
        results = plate_reads_decide(batch)
    except Exception:
        connection.close()
        raise
    if any(isinstance(result, DatabaseError) for result in results):
        connection.close()
    return results


def _hang_ups_dropped() -> None:
    """A connection kept idle between batches may have been ended by the server (a restart, a network cut): its
    socket then holds the goodbye. Such a connection, and each like it the pool hands over next, is dropped before
    the batch rather than failing it; a live one costs a poll, no round trip."""
    for _ in range(settings.DATABASES["default"]["OPTIONS"]["pool"]["max_size"]):
        connection.ensure_connection()
        raw = connection.connection
        if not aiodb.readable(raw):
            return
        try:
            raw.execute("", prepare=False)  # reads what arrived; raises if the server hung up
        except psycopg.Error:
            connection.close()  # broken: the pool replaces it
            continue
        return


class _Batcher:
    """Reads waiting for a decision thread; each free thread takes the next batch."""

    def __init__(self, slots: int):
        self.loop = asyncio.get_running_loop()
        self.waiting: deque[tuple[PlateReadIn, asyncio.Future]] = deque()
        self.free = slots
        self.tasks: set[asyncio.Task] = set()

    async def decide(self, read: PlateReadIn) -> dict:
        answer = self.loop.create_future()
        if self.free and not self.waiting:  # a lone read: handed over from the caller's task, no task of its own
            self.free -= 1
            await self._run([(read, answer)])
        else:
            self.waiting.append((read, answer))
            self._start()
        return await answer

    def _start(self) -> None:
        while self.waiting and self.free:
            self.free -= 1
            task = self.loop.create_task(self._run(self._next_batch()))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    def _next_batch(self) -> list[tuple[PlateReadIn, asyncio.Future]]:
        batch, keys, reads, later = [], set(), set(), []
        while self.waiting and len(batch) < BATCH_MOST:
            item = self.waiting.popleft()
            read = item[0]
            if read.read.key in keys or (read.device_id, read.read_id) in reads:
                later.append(item)  # after this batch, in its place
                continue
            keys.add(read.read.key)
            reads.add((read.device_id, read.read_id))
            batch.append(item)
        self.waiting.extendleft(reversed(later))
        return batch

    async def _run(self, batch: list[tuple[PlateReadIn, asyncio.Future]]) -> None:
        try:
            results = await self.loop.run_in_executor(_threads, _on_thread, [read for read, _answer in batch])
        except BaseException as exc:
            for _read, answer in batch:
                if not answer.done():
                    answer.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            for (_read, answer), result in zip(batch, results, strict=True):
                if answer.done():  # its reader has gone (connection closed)
                    continue
                if isinstance(result, Exception):
                    answer.set_exception(result)
                else:
                    answer.set_result(result)
        finally:
            self.free += 1
            self._start()


class _Batchers:
    """The batcher of the running loop (a test's new loop gets a new one), one slot per decision thread."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.batcher: _Batcher | None = None

    def get(self) -> _Batcher:
        if self.batcher is None or self.batcher.loop is not asyncio.get_running_loop():
            self.batcher = _Batcher(self.slots)
        return self.batcher


_batchers = _Batchers(THREADS)
_holding: set[int] = set()  # the decision threads that have run a batch (and so hold a connection), by ident


def connections_close() -> None:
    """Hand back every decision thread's connection (serve's shutdown; tests, before their database goes): one task
    per thread that has decided (each holds one), each waiting for the others so that no thread takes two. Not one
    per THREADS: the executor starts a thread only when none is idle, so fewer may exist, and a task that no thread
    takes would hold the others at the barrier."""
    if not _holding:
        return
    everyone = threading.Barrier(len(_holding))

    def close() -> None:
        with contextlib.suppress(threading.BrokenBarrierError):  # a thread still busy: the others close theirs
            everyone.wait(timeout=10)
        connections.close_all()

    for done in [_threads.submit(close) for _ in range(len(_holding))]:
        done.result()
