"""A plate read's decision on a decision thread: the lane and the vehicle's lock, the facts, the rules, the writes,
in one transaction (the loop's fast path, apps.access.fastpath, hands the rarer reads here)."""

import functools
from datetime import datetime, timedelta

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, transaction
from django.db.models.expressions import RawSQL
from django.utils import timezone

from apps.access import clock, rules, selectors
from apps.access.models import (
    BarrierCommand,
    PlateRead,
)
from apps.access.services.common import (
    COMMAND_TTL,
    UnknownLane,
    _alert_raise,
    _publish_occupancy_changed,
    _publish_read,
    lane_policy,
    new_command_id,
)
from apps.access.services.decided import Decided, _booking_id, _repeat_outcome, _stale_outcome, decision_frame
from apps.access.services.visits import _apply_visits
from apps.access.signals import visit_held
from apps.access.vocabulary import Action, Reason
from apps.carparks.models import CarPark, Lane
from apps.core import events, plates
from apps.core.sql import prepared_cursor


def plate_read_decide(
    *,
    device_id: str,
    read_id: str,
    lane_code: str,
    plate: str,
    score: float,
    captured_at: datetime,
    lane_id: int | None = None,
    candidates: list | None = None,
    region: str = "",
    vehicle: dict | None = None,
    retransmit: bool = False,
    local_action: str = "",
    with_command: bool = True,
) -> dict:
    """Record a plate read, decide what the barrier does, apply it to visits; all in one transaction.

    Returns the `decision` frame. The caller sends it only after this returns (i.e. after commit), so a decision
    the controller receives is never lost; a resent read gets it again with `duplicate: true`.
    """
    try:
        return _decide(
            device_id=device_id,
            read_id=read_id,
            lane_code=lane_code,
            lane_id=lane_id,
            plate=plate,
            score=score,
            captured_at=captured_at,
            candidates=candidates,
            region=region,
            vehicle=vehicle,
            retransmit=retransmit,
            local_action=local_action,
            with_command=with_command,
        )
    except IntegrityError:
        # The same read_id decided meanwhile on another connection of this device (a reconnect raced the old one).
        stored = PlateRead.objects.filter(device_id=device_id, read_id=read_id).values_list("decision", flat=True)
        decision = stored.first()
        if decision is None:
            raise
        return decision | {"duplicate": True}


def _lane_locked(device_id: str, lane_code: str, lane_id: int | None, key: str) -> Lane:
    """The lane with its car park's current policies, taking the vehicle's lock in the same round trip."""
    if lane_id:
        return _lane_locked_prepared(lane_id, key)
    # Serialise decisions about one vehicle (by look-alike key) across threads and processes.
    lock = RawSQL("pg_advisory_xact_lock(carparks_lane.carpark_id::integer, hashtext(%s))::text", [key])
    lanes = Lane.objects.select_related("carpark").annotate(_locked=lock)
    lane = lanes.filter(pk=lane_id).first() if lane_id else lanes.filter(devices__id=device_id, code=lane_code).first()
    if lane is None:
        raise UnknownLane(lane_code)
    return lane


@functools.cache
def lane_statement() -> tuple[str, list[str], list[str]]:
    """SELECT lane + car park by lane id, locking the vehicle (look-alike key) first: the decision's first statement.
    Parameters: the look-alike key, the lane's id."""
    lane_fields, carpark_fields = Lane._meta.concrete_fields, CarPark._meta.concrete_fields
    columns = [f"l.{connection.ops.quote_name(f.column)}" for f in lane_fields]
    columns += [f"c.{connection.ops.quote_name(f.column)}" for f in carpark_fields]
    sql = (
        f"SELECT pg_advisory_xact_lock(l.carpark_id::integer, hashtext(%s)), {', '.join(columns)} "  # noqa: S608  (model metadata only)
        "FROM carparks_lane l JOIN carparks_carpark c ON c.id = l.carpark_id WHERE l.id = %s"
    )
    return sql, [f.attname for f in lane_fields], [f.attname for f in carpark_fields]


def _lane_locked_prepared(lane_id: int, key: str) -> Lane:
    with prepared_cursor() as cursor:
        cursor.execute(lane_statement()[0], [key, lane_id], prepare=True)
        row = cursor.fetchone()
    if row is None:
        raise UnknownLane(str(lane_id))
    return lane_of_row(lane_id, row[1:])


def lane_of_row(lane_id: int, values: tuple) -> Lane:
    """The Lane (with its CarPark) of lane_statement's row, without the lock's column. The same object as last time
    while the row is unchanged (lanes and car parks are only read here), so no new model instances per decision."""
    cached = _lanes.get(lane_id)
    if cached is not None and cached[0] == values:
        return cached[1]
    _sql, lane_names, carpark_names = lane_statement()
    lane = Lane.from_db(DEFAULT_DB_ALIAS, lane_names, values[: len(lane_names)])
    lane.carpark = CarPark.from_db(DEFAULT_DB_ALIAS, carpark_names, values[len(lane_names) :])
    _lanes[lane_id] = (values, lane)
    return lane


def lane_last_seen(lane_id: int) -> Lane | None:
    """The Lane lane_of_row last returned for this id (its policies may have changed since)."""
    cached = _lanes.get(lane_id)
    return cached[1] if cached is not None else None


_lanes: dict[int, tuple[tuple, Lane]] = {}  # lane id -> (its row as last read, the Lane with its CarPark)


def plate_read_of(*, plate: str, score: float, captured_at: datetime, candidates: list | None) -> rules.Read:
    return rules.Read(
        plate=plates.normalise(plate)[:32],
        key=plates.lookalike_key(plate)[:32],
        score=score,
        captured_at=captured_at,
        candidates=plates.normal_candidates(candidates),
    )


def _decide(*, device_id, read_id, lane_code, lane_id, plate, score, captured_at, candidates, region, vehicle,
            retransmit, local_action, with_command) -> dict:  # fmt: skip
    now = timezone.now()
    read = plate_read_of(plate=plate, score=score, captured_at=captured_at, candidates=candidates)
    with transaction.atomic():
        lane = _lane_locked(device_id, lane_code, lane_id, read.key)
        read, clock_offset = clock.on_server_clock(
            read, policy=lane_policy(lane), now=now, retransmit=retransmit, local_action=local_action
        )
        context = selectors.decision_context(
            device_id=device_id, read_id=read_id, lane_id=lane.id, carpark_id=lane.carpark_id, read=read,
            policy=lane_policy(lane), entry=lane.direction == Lane.Direction.ENTRY, now=now,
        )  # fmt: skip
        if context.duplicate is not None:
            return context.duplicate | {"duplicate": True}
        decided = plate_read_decided(
            lane=lane, context=context, device_id=device_id, read_id=read_id, plate=plate, read=read, now=now,
            candidates=candidates, region=region, vehicle=vehicle, retransmit=retransmit, local_action=local_action,
            with_command=with_command,
        )  # fmt: skip
        if clock_offset is not None:  # the device's clock is wrong: decided at receipt, staff told
            decided.read_row["clock_offset_s"] = clock_offset
            clock.device_clock_record(
                device_id=device_id, offset_s=clock_offset, stale_after_s=lane_policy(lane).stale_after_s
            )
        if decided.in_one_statement():
            sql, params = decided.statement()
            with prepared_cursor() as cursor:  # a few shapes, each prepared once per connection
                cursor.execute(sql, params, prepare=True)
                written = decided.written(cursor.fetchone())
            for kind, data in written:
                events.publish_to_carpark(carpark_id=lane.carpark_id, kind=kind, data=data)
            return decided.frame
        carpark, outcome = lane.carpark, decided.outcome
        row = PlateRead(lane=lane, carpark=carpark, **decided.read_row)
        row.save(force_insert=True)
        if decided.command_row is not None:
            BarrierCommand(lane=lane, read=row, **decided.command_row).save(force_insert=True)
        delta = _apply_visits(
            carpark, lane, row, outcome, stale=decided.stale, entry=decided.entry, local_action=local_action,
            simple=decided.simple,
        )  # fmt: skip
        alert = None
        if decided.alert:
            alert = _alert_raise(
                carpark=carpark, lane=lane, plate=read.plate, reason=outcome.reason, read=row,
                policy=lane_policy(lane), checked=True,
            )  # fmt: skip
        if outcome.hold_visit is not None and not decided.stale:
            visit_held.send(sender=PlateRead, visit_id=outcome.hold_visit.id, lane=lane, alert=alert)
        _publish_read(carpark, lane, row)
        if delta is not None:
            _publish_occupancy_changed(carpark)
        return row.decision


def plate_read_decided(*, lane: Lane, context: selectors.DecisionContext, device_id: str, read_id: str, plate: str,
                       read: rules.Read, now: datetime, candidates: list | None, region: str, vehicle: dict | None,
                       retransmit: bool, local_action: str, with_command: bool) -> "Decided":  # fmt: skip
    """The decision about a read (not a duplicate) and the rows it writes (their fields by attname), from the facts
    read under its lock."""
    policy = lane_policy(lane)
    entry = lane.direction == Lane.Direction.ENTRY
    stale = read.captured_at < now - timedelta(seconds=policy.stale_after_s)
    if stale:
        outcome = _stale_outcome(read, policy, context.facts, entry, local_action)
    elif context.repeat is not None:
        outcome = _repeat_outcome(context.repeat)
    else:
        outcome = (
            rules.decide_entry(read, policy, context.facts) if entry else rules.decide_exit(read, policy, context.facts)
        )
    command = None
    if outcome.action == Action.OPEN and with_command:
        command = {
            "command_id": new_command_id(),
            "device_id": device_id,
            "reason": outcome.reason,
            "expires_at": now + COMMAND_TTL,
        }
    frame = decision_frame(read_id, outcome, command)
    row = {
        "device_id": device_id,
        "read_id": read_id,
        "plate_raw": plate[:32],
        "plate": read.plate,
        "lookalike_key": read.key,
        "score": read.score,
        "candidates": candidates or [],
        "region": region[:16],
        "vehicle": vehicle or {},
        "retransmit": retransmit,
        "local_action": local_action,
        "captured_at": read.captured_at,
        "action": outcome.action,
        "reason": outcome.reason,
        "match": outcome.match or "",
        "booking_id": _booking_id(outcome),
        "permit_id": outcome.permit_id,
        "decision": frame,
        "unpaired_exit": not stale and not entry and outcome.reason == Reason.NO_VISIT,
    }
    alert = outcome.alert and not stale and not context.alerted_recently
    return Decided(
        lane, frame, row, command, outcome, alert=alert, stale=stale, entry=entry, simple=not context.visits_around,
        now=now,
    )  # fmt: skip
