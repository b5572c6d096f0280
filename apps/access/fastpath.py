"""Plate-read decisions on the server's event loop (PostgreSQL): the common reads decided in two round trips on an
async psycopg connection of the loop's own (apps.core.aiodb), with no thread hand-off.

  1. BEGIN; lock the vehicle and read the lane's policies (services.lane_statement); read every fact
     (selectors.CONTEXT_SQL), computed with the lane's policies as last seen;
  2. the decision's writes in one statement (services.Decided.statement); COMMIT. The decision is returned (and
     sent) only once the COMMIT's reply is in, so a decision the controller gets is never lost.
Each round trip is one pipeline of prepared statements (apps.core.aiodb.run).

Reads that arrive while every connection is busy wait, and the next free connection decides them together: one
transaction, the same two round trips, each read's statements one after the other in them (group commit). A lone
read waits for nothing. Two reads of one vehicle (look-alike key), or of one read_id, never share a batch: the
second sees the first's rows. Keys are locked in sorted order, so two batches cannot deadlock each other.

The decision itself is the thread path's (services.plate_read_decided, rules): only where the statements run
differs. The facts are read in the same round trip as the lock, with the policies of the lane's previous read; when
the lane's row says they have changed (or on this process's first read of the lane) they are read again, under the
same lock, with the current ones. What this path does not write, it hands back (None), for the full service on a
decision thread (services.plate_read_decide) once its batch has ended: stale reads (and reads of a device whose clock is
wrong: apps.access.clock), visits superseded or held,
overstays, out of order reads, an unknown lane; and every read of a batch that failed as a whole (a read_id raced by
another connection, a deadlock with a decision thread). Events leave through apps.core.events after the commit, as
from the thread path.

Why: at 100 reads/s the thread path spent more time handing the read to a decision thread and the frame back,
and competing with the loop for the GIL, than in PostgreSQL; at saturation a transaction per read spent more in
round trips and commits than in deciding (bench/gateway.py; docs/architecture.md).
"""

import asyncio
import dataclasses
from collections import deque
from datetime import datetime

import psycopg
from django.conf import settings
from django.utils import timezone

from apps.access import clock, rules, selectors, services
from apps.carparks.models import Lane
from apps.core import aiodb, events

POOL_NAME = "decisions"
# Reads decided in one transaction at most. A bigger batch holds its locks longer; at saturation on 2 cores, 32 with
# 4 connections decided about a fifth more than 16 with 8 (figures: docs/architecture.md, item 6 of a plate read).
BATCH_MOST = 32


def on_the_loop() -> bool:
    return settings.DECISIONS_ON_LOOP


async def plate_read_decide(
    *,
    device_id: str,
    read_id: str,
    lane_id: int | None,
    plate: str,
    score: float,
    captured_at,
    candidates: list | None = None,
    region: str = "",
    vehicle: dict | None = None,
    retransmit: bool = False,
    local_action: str = "",
) -> dict | None:
    """services.plate_read_decide on the loop: the `decision` frame once committed, or None when this read must be
    decided by the full service (on a thread). Django's DatabaseError when the database cannot be reached."""
    if lane_id is None or not on_the_loop():
        return None
    pending = _Pending(
        device_id=device_id, read_id=read_id, lane_id=lane_id, plate=plate, now=timezone.now(),
        read=services.plate_read_of(plate=plate, score=score, captured_at=captured_at, candidates=candidates),
        details={"candidates": candidates, "region": region, "vehicle": vehicle, "retransmit": retransmit,
                 "local_action": local_action},
        answer=asyncio.get_running_loop().create_future(),
    )  # fmt: skip
    return await _batchers.get().decide(pending)


@dataclasses.dataclass(eq=False)
class _Pending:
    """A read waiting for its batch, then what its batch found and decided."""

    device_id: str
    read_id: str
    lane_id: int
    plate: str
    now: datetime
    read: rules.Read
    details: dict  # plate_read_decided's other arguments
    answer: asyncio.Future
    seen: Lane | None = None  # the lane as this process last saw it, whose policies the first facts were read with
    lane: Lane | None = None
    context: selectors.DecisionContext | None = None
    result: dict | None = None  # the frame to answer; None: the full service decides
    decided: services.Decided | None = None  # what it writes

    def facts(self, lane: Lane) -> tuple:
        params = selectors.decision_context_params(
            device_id=self.device_id, read_id=self.read_id, lane_id=self.lane_id, carpark_id=lane.carpark_id,
            read=self.read, policy=services.lane_policy(lane), entry=lane.direction == Lane.Direction.ENTRY,
            now=self.now,
        )  # fmt: skip
        return aiodb.statement(selectors.CONTEXT_SQL)(params)

    def decide(self) -> None:
        """Sets `result` (a duplicate's frame) or `decided` (the writes), or neither (the full service decides)."""
        if self.lane is None:
            return  # no such lane (any more): the full service says so
        if self.context.duplicate is not None:
            self.result = self.context.duplicate | {"duplicate": True}
            return
        details = self.details
        _read, clock_offset = clock.on_server_clock(
            self.read, policy=services.lane_policy(self.lane), now=self.now, retransmit=details["retransmit"],
            local_action=details["local_action"],
        )  # fmt: skip
        if clock_offset is not None:
            return  # the device's clock is wrong: the full service decides it at receipt and alerts staff
        decided = services.plate_read_decided(
            lane=self.lane, context=self.context, device_id=self.device_id, read_id=self.read_id, plate=self.plate,
            read=self.read, now=self.now, with_command=True, **self.details,
        )  # fmt: skip
        if decided.in_one_statement():
            self.decided, self.result = decided, decided.frame


async def _decide_batch(batch: list[_Pending]) -> None:
    """Decide `batch` in one transaction; every read's answer is set once the transaction has ended."""
    committed: list[tuple[_Pending, list]] = []  # each written read with its statement's rows
    try:
        async with _pools.get().connection() as conn:
            await _locked_with_facts(conn, batch)
            for pending in batch:
                pending.decide()
            writing = [pending for pending in batch if pending.decided is not None]
            if not writing:
                await conn.rollback()
            else:
                written = await aiodb.run(
                    conn, *(aiodb.statement(sql)(params) for sql, params in (p.decided.statement() for p in writing)),
                    "COMMIT",
                )  # fmt: skip
                committed = list(zip(writing, written, strict=True))
    except (psycopg.IntegrityError, psycopg.errors.DeadlockDetected):
        # Nothing was written: a read decided meanwhile on another connection (the full service answers the
        # duplicate), or locks taken in another order by a decision thread. Each read goes to the full service.
        for pending in batch:
            pending.result = None
    except BaseException as exc:
        for pending in batch:
            if not pending.answer.done():
                pending.answer.set_exception(aiodb.django_error(exc) if isinstance(exc, psycopg.Error) else exc)
        if not isinstance(exc, Exception):
            raise
        return
    for pending in batch:
        if not pending.answer.done():  # its reader may have gone (connection closed)
            pending.answer.set_result(pending.result)
    if committed:
        # The events are built and queued once the frames are out: the answers' readers are woken first (a lone
        # read's reader is this task, which sends its frame before the loop turns). They are notices to
        # dashboards; the controller's answer waits for nothing but the commit.
        asyncio.get_running_loop().call_soon(_publish, committed)


def _publish(written: list[tuple[_Pending, list]]) -> None:
    for pending, rows in written:
        for kind, data in pending.decided.written(rows[0]):
            events.publish_committed_to_carpark(carpark_id=pending.lane.carpark_id, kind=kind, data=data)


async def _locked_with_facts(conn, batch: list[_Pending]) -> None:
    """Each read's lane and context, under its vehicle's lock, in an open transaction: one round trip, and one more
    for the reads whose lane this process had not seen or whose policies changed."""
    statements, unseen = ["BEGIN"], []
    for pending in batch:
        statements.append(aiodb.statement(services.lane_statement()[0])([pending.read.key, pending.lane_id]))
        pending.seen = services.lane_last_seen(pending.lane_id)
        if pending.seen is not None:
            statements.append(pending.facts(pending.seen))
    results = iter(await aiodb.run(conn, *statements))
    for pending in batch:
        rows, found = next(results), next(results) if pending.seen is not None else None
        if rows:
            pending.lane = services.lane_of_row(pending.lane_id, rows[0][1:])
            if pending.lane is not pending.seen:
                unseen.append(pending)
            else:
                pending.context = _context(pending, found)
    if unseen:  # the facts again, under the same locks, with the lanes' current policies
        for pending, found in zip(unseen, await aiodb.run(conn, *(p.facts(p.lane) for p in unseen)), strict=True):
            pending.context = _context(pending, found)


def _context(pending: _Pending, rows: list) -> selectors.DecisionContext:
    return selectors.decision_context_of_rows(rows, read=pending.read, policy=services.lane_policy(pending.lane))


class _Batcher:
    """Reads waiting for a connection; each free connection takes the next batch (at most BATCH_MOST, no two of one
    vehicle or one read_id), keys sorted."""

    def __init__(self, slots: int):
        self.loop = asyncio.get_running_loop()
        self.waiting: deque[_Pending] = deque()
        self.free = slots
        self.tasks: set[asyncio.Task] = set()

    async def decide(self, pending: _Pending) -> dict | None:
        if self.free and not self.waiting:  # a lone read: decided in the caller's task, no hop to another
            self.free -= 1
            await self._run([pending])
        else:
            self.waiting.append(pending)
            self._start()
        return await pending.answer

    def _start(self) -> None:
        while self.waiting and self.free:
            self.free -= 1
            task = self.loop.create_task(self._run(self._next_batch()))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    def _next_batch(self) -> list[_Pending]:
        batch, keys, reads, later = [], set(), set(), []
        while self.waiting and len(batch) < BATCH_MOST:
            pending = self.waiting.popleft()
            read = (pending.device_id, pending.read_id)
            if pending.read.key in keys or read in reads:
                later.append(pending)  # after this batch, in its place
                continue
            keys.add(pending.read.key)
            reads.add(read)
            batch.append(pending)
        self.waiting.extendleft(reversed(later))
        return sorted(batch, key=lambda pending: pending.read.key)

    async def _run(self, batch: list[_Pending]) -> None:
        try:
            await _decide_batch(batch)
        finally:
            self.free += 1
            self._start()


class _Batchers:
    """The batcher of the running loop (a test's new loop gets a new one), one slot per pooled connection."""

    def __init__(self) -> None:
        self.batcher: _Batcher | None = None

    def get(self) -> _Batcher:
        if self.batcher is None or self.batcher.loop is not asyncio.get_running_loop():
            self.batcher = _Batcher(settings.DECISION_CONNECTIONS)
        return self.batcher


async def close() -> None:
    """Close this process's decision pool (serve's shutdown), if it was opened on the running loop."""
    await _pools.close()


# Two kept open, more opened under load: the pool hands out its idle connections in turn, so a few warm backends
# answer a steady trickle faster than many cold ones, and a burst gets more transactions in flight.
_pools = aiodb.PerLoop(POOL_NAME, min_size=2, max_size=settings.DECISION_CONNECTIONS)
_batchers = _Batchers()
