"""Plate reads decided together in ONE transaction on Django's connection, the route of every read (batcher.py brings
them from the server's loop; a replay or a test brings one):

  1. every read's lock + lane (facts.lane_statement) and facts (facts.CONTEXT_SQL), as one pipeline (apps.core.sql):
     one round trip, then one more for the reads whose lane this process had not seen or whose policies changed;
  2. each read decided in Python by the pure rules (writes.decided_of);
  3. the rarer outcomes written through the ORM's helpers (writes.write_with_orm), then the common ones' one statement
     each, pipelined with the COMMIT: one round trip.
Keys are locked in sorted order, so two batches cannot deadlock each other on them. A batch that fails as a whole (a
read_id decided meanwhile on another connection, a deadlock with the ORM helpers' locks) is decided again read by
read, where a duplicate is answered with the stored decision. Events leave through apps.core.events after the commit.
"""

import dataclasses
from datetime import datetime

import psycopg
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from apps.access import clock, rules
from apps.access.decision import facts
from apps.access.decision.writes import Decided, decided_of, write_with_orm
from apps.access.models import PlateRead
from apps.access.services.common import UnknownLane, lane_policy
from apps.carparks.models import Lane
from apps.core import events, sql


@dataclasses.dataclass(eq=False)
class PlateReadIn:
    """A plate read to decide, as the controller (or camera) sent it."""

    device_id: str
    read_id: str
    lane_id: int
    plate: str
    score: float
    captured_at: datetime
    candidates: list | None = None
    region: str = ""
    vehicle: dict | None = None
    retransmit: bool = False
    local_action: str = ""
    with_command: bool = True  # vendor pushes: no barrier command (the camera has no barrier to open)
    now: datetime = dataclasses.field(default_factory=timezone.now)  # received

    def __post_init__(self) -> None:
        self.read = facts.plate_read_of(
            plate=self.plate, score=self.score, captured_at=self.captured_at, candidates=self.candidates
        )


@dataclasses.dataclass(eq=False)
class _Deciding:
    """A read in its batch: what was read and decided about it."""

    read_in: PlateReadIn
    seen: Lane | None = None  # the lane as this process last saw it, whose policies the first facts were read with
    lane: Lane | None = None
    context: facts.DecisionContext | None = None
    result: dict | Exception | None = None  # the frame, or why it has none
    decided: Decided | None = None
    clock_offset: float | None = None

    def on_clock(self, lane: Lane) -> tuple[rules.Read, float | None]:
        r = self.read_in
        return clock.on_server_clock(
            r.read, policy=lane_policy(lane), now=r.now, retransmit=r.retransmit, local_action=r.local_action
        )

    def facts(self, lane: Lane) -> sql.Item:
        r, (read, _offset) = self.read_in, self.on_clock(lane)
        params = facts.decision_context_params(
            device_id=r.device_id, read_id=r.read_id, lane_id=r.lane_id, carpark_id=lane.carpark_id, read=read,
            policy=lane_policy(lane), entry=lane.direction == Lane.Direction.ENTRY, now=r.now,
        )  # fmt: skip
        return sql.statement(facts.CONTEXT_SQL)(params)

    def context_of(self, rows: list[tuple]) -> None:
        read, _offset = self.on_clock(self.lane)
        self.context = facts.decision_context_of_rows(rows, read=read, policy=lane_policy(self.lane))

    def decide(self) -> None:
        """Sets `result`: a duplicate's stored frame, or the decision's, with what it writes in `decided`."""
        if self.lane is None:
            self.result = UnknownLane(str(self.read_in.lane_id))
            return
        if self.context.duplicate is not None:
            self.result = self.context.duplicate | {"duplicate": True}
            return
        r = self.read_in
        read, self.clock_offset = self.on_clock(self.lane)
        self.decided = decided_of(
            lane=self.lane, context=self.context, device_id=r.device_id, read_id=r.read_id, plate=r.plate, read=read,
            now=r.now, candidates=r.candidates, region=r.region, vehicle=r.vehicle, retransmit=r.retransmit,
            local_action=r.local_action, with_command=r.with_command,
        )  # fmt: skip
        if self.clock_offset is not None:  # the device's clock is wrong: decided at receipt, staff told
            self.decided.read_row["clock_offset_s"] = self.clock_offset
        self.result = self.decided.frame


def plate_reads_decide(reads: list[PlateReadIn]) -> list[dict | Exception]:
    """Decide `reads` (no two of one look-alike key or read_id) in one transaction; each read's `decision` frame,
    returned once committed, or the exception it alone met (an unknown lane). Django's DatabaseError when the
    database cannot decide them."""
    try:
        return _in_one_transaction(reads)
    except (IntegrityError, OperationalError) as exc:
        deadlock = isinstance(exc.__cause__, psycopg.errors.DeadlockDetected)
        if len(reads) > 1 and (deadlock or isinstance(exc, IntegrityError)):
            return [_alone(read) for read in reads]
        if len(reads) == 1 and isinstance(exc, IntegrityError):
            # The same read_id decided meanwhile on another connection (a reconnect raced the old one).
            stored = PlateRead.objects.filter(device_id=reads[0].device_id, read_id=reads[0].read_id)
            decision = stored.values_list("decision", flat=True).first()
            if decision is not None:
                return [decision | {"duplicate": True}]
        raise


def _alone(read: PlateReadIn) -> dict | Exception:
    try:
        return plate_reads_decide([read])[0]
    except Exception as exc:  # this read's answer: the others' stand
        return exc


def _in_one_transaction(reads: list[PlateReadIn]) -> list[dict | Exception]:
    batch = sorted((_Deciding(read) for read in reads), key=lambda d: d.read_in.read.key)
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        _locked_with_facts(batch)
        for deciding in batch:
            deciding.decide()
        one, orm = [], []
        for deciding in batch:
            if deciding.decided is not None:
                (one if deciding.decided.in_one_statement() else orm).append(deciding)
        for deciding in batch:
            if deciding.clock_offset is not None:
                clock.device_clock_record(
                    device_id=deciding.read_in.device_id, offset_s=deciding.clock_offset,
                    stale_after_s=lane_policy(deciding.lane).stale_after_s,
                )  # fmt: skip
        for deciding in orm:
            write_with_orm(deciding.decided)
        if one:
            writes = [sql.statement(text)(params) for text, params in (d.decided.statement() for d in one)]
            # COMMIT in the writes' round trip; the atomic block's own commit then finds nothing to commit and runs
            # the on_commit hooks (the events) as usual.
            written = sql.run_django(*writes, *(["COMMIT"] if outermost else []))
            for deciding, rows in zip(one, written, strict=True):
                for kind, data in deciding.decided.written(rows[0]):
                    events.publish_to_carpark(carpark_id=deciding.lane.carpark_id, kind=kind, data=data)
    by_read = {id(d.read_in): d.result for d in batch}
    return [by_read[id(read)] for read in reads]


def _locked_with_facts(batch: list[_Deciding]) -> None:
    """Each read's lane and context, under its vehicle's lock: one round trip, and one more for the reads whose lane
    this process had not seen or whose policies changed."""
    lock, items = sql.statement(facts.lane_statement()[0]), []
    for deciding in batch:
        read = deciding.read_in
        items.append(lock([read.read.key, read.lane_id]))
        deciding.seen = facts.lane_last_seen(read.lane_id)
        if deciding.seen is not None:
            items.append(deciding.facts(deciding.seen))
    results, unseen = iter(sql.run_django(*items)), []
    for deciding in batch:
        rows = next(results)
        found = next(results) if deciding.seen is not None else None
        if not rows:
            continue  # no such lane (any more)
        deciding.lane = facts.lane_of_row(deciding.read_in.lane_id, rows[0][1:])
        if deciding.lane is deciding.seen:
            deciding.context_of(found)
        else:
            unseen.append(deciding)
    if unseen:  # the facts again, under the same locks, with the lanes' current policies
        for deciding, found in zip(unseen, sql.run_django(*(d.facts(d.lane) for d in unseen)), strict=True):
            deciding.context_of(found)


def plate_read_decide(
    *,
    device_id: str,
    read_id: str,
    plate: str,
    score: float,
    captured_at: datetime,
    lane_id: int | None = None,
    lane_code: str = "",
    **details,
) -> dict:
    """Decide one read on the calling thread (replays, jobs, tests): a batch of one. Returns the `decision` frame;
    raises UnknownLane for a lane (`lane_id`, else the device's `lane_code`) that does not exist."""
    if lane_id is None:
        lane_id = Lane.objects.filter(devices__id=device_id, code=lane_code).values_list("id", flat=True).first()
        if lane_id is None:
            raise UnknownLane(lane_code)
    read = PlateReadIn(
        device_id=device_id, read_id=read_id, lane_id=lane_id, plate=plate, score=score, captured_at=captured_at,
        **details,
    )  # fmt: skip
    result = plate_reads_decide([read])[0]
    if isinstance(result, Exception):
        raise result
    return result
