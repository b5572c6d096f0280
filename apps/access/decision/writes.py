"""A decided read and what it writes: the rules' outcome (`decided_of`), the decision frame, and the rows, written in
ONE statement (data-modifying CTEs, `Decided.statement`) for the common decisions, else through the ORM's helpers
(`write_with_orm`: visits superseded or held, stale reads, overstays)."""

import functools
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import DEFAULT_DB_ALIAS, connections, models
from psycopg.types.json import Jsonb

from apps.access import rules, selectors
from apps.access.decision.facts import DecisionContext
from apps.access.models import (
    Alert,
    BarrierCommand,
    PlateRead,
    Visit,
)
from apps.access.services.common import (
    COMMAND_TTL,
    _alert_raise,
    _occupancy_changed_data,
    _publish_occupancy_changed,
    _publish_read,
    _read_event_data,
    iso,
    lane_policy,
    new_command_id,
)
from apps.access.services.visits import _apply_visits
from apps.access.signals import visit_held
from apps.access.vocabulary import Action, Match, Reason
from apps.bookings import flights
from apps.bookings.models import Booking
from apps.carparks.models import Lane


@dataclass
class Decided:
    """A decided plate read and what it writes. The common decisions are written in ONE statement (`statement`, then
    `written` with its result row), without model instances; the rarer ones by `write_with_orm`."""

    lane: Lane
    frame: dict  # the `decision` frame
    read_row: dict  # the PlateRead's fields by attname, but its lane and car park
    command_row: dict | None  # the BarrierCommand's, but its lane and read
    outcome: rules.Outcome
    alert: bool
    stale: bool
    entry: bool
    simple: bool  # no visit or unpaired exit of this vehicle after the read (not out of order)
    now: datetime  # when it was decided: the rows' auto_now(_add) fields

    def in_one_statement(self) -> bool:
        outcome = self.outcome
        if self.stale or outcome.superseded_visit or outcome.hold_visit:
            return False
        if outcome.open_visit and (not self.simple or outcome.vehicle_plate):
            return False  # paired by captured_at, or under a candidate's plate (its key's visits were not read)
        return not (outcome.close_visit is not None and outcome.overstay_minutes)

    def statement(self) -> tuple[str, list]:
        """Insert the read, its command, the visit it opens or close the visit it ends, update the booking and raise
        the alert, in ONE statement (data-modifying CTEs), prepared once per shape and connection."""
        lane, row, outcome = self.lane, self.read_row, self.outcome
        ids = {"carpark_id": lane.carpark_id}
        now = self.now
        parts, params = [], []

        def cte(name: str, sql: str, values: list) -> None:
            parts.append(f"{name} AS ({sql})")
            params.extend(values)

        cte("r", *_insert_sql(PlateRead, row | ids | {"lane_id": lane.id}, now=now, returning="id, received_at"))
        if self.command_row is not None:
            cte("c", *_insert_sql(BarrierCommand, self.command_row | {"lane_id": lane.id}, now=now, read_fk="read_id"))
        if outcome.open_visit:
            visit = {
                "plate": row["plate"], "lookalike_key": row["lookalike_key"], "entry_lane_id": lane.id,
                "entered_at": row["captured_at"], "booking_id": outcome.booking_id, "permit_id": outcome.permit_id,
            }  # fmt: skip
            cte("v", *_insert_sql(Visit, visit | ids, now=now, read_fk="entry_read_id"))
            booking_id, status, from_statuses = outcome.booking_id, Booking.Status.ARRIVED, [Booking.Status.CONFIRMED]
        elif outcome.close_visit is not None:
            # no overstay on this path: the note says when a late return flight is why (apps.bookings.flights)
            note, note_params = flights.no_overstay_note_sql(at=row["captured_at"], grace_min=lane.carpark.grace_min)
            close = (  # the note is fixed SQL with its own parameters
                "UPDATE access_visit SET exit_read_id = r.id, exit_lane_id = %s, exited_at = %s, held_at = NULL, "  # noqa: S608
                f"charge_note = {note} FROM r WHERE access_visit.id = %s AND access_visit.exited_at IS NULL"
            )
            cte("x", close, [lane.id, row["captured_at"], *note_params, outcome.close_visit.id])
            booking_id, status = outcome.close_visit.booking_id, Booking.Status.DEPARTED
            from_statuses = [Booking.Status.CONFIRMED, Booking.Status.ARRIVED]
        else:
            booking_id = status = from_statuses = None
        if booking_id:
            cte("b", "UPDATE bookings_booking SET status = %s, updated_at = %s WHERE id = %s AND status = ANY(%s)",
                [status, now, booking_id, from_statuses])  # fmt: skip
        if self.alert:
            alert = {"lane_id": lane.id, "plate": row["plate"], "reason": row["reason"]}
            cte("a", *_insert_sql(Alert, alert | ids, now=now, read_fk="read_id"))
        returning = ", ".join(
            ["r.id", "r.received_at", "(SELECT id FROM v)" if outcome.open_visit else "NULL",
             "(SELECT id FROM a)" if self.alert else "NULL"]
        )  # fmt: skip
        return f"WITH {', '.join(parts)} SELECT {returning} FROM r", params  # noqa: S608  (see _insert_sql)

    def written(self, result: tuple) -> list[tuple[str, dict]]:
        """Takes the statement's result row; the car park events to publish once committed, in order."""
        carpark, lane, row, outcome = self.lane.carpark, self.lane, self.read_row, self.outcome
        read_pk, _received_at, visit_id, alert_id = result
        published = []
        if outcome.open_visit:
            data = {
                "id": visit_id, "carpark": carpark.code, "plate": row["plate"], "entered_at": iso(row["captured_at"]),
                "exited_at": None, "booking": outcome.booking_reference,
            }  # fmt: skip
            published.append(("visit", data))
        elif outcome.close_visit is not None:
            fact = outcome.close_visit
            data = {
                "id": fact.id, "carpark": carpark.code, "plate": fact.plate, "entered_at": iso(fact.entered_at),
                "exited_at": iso(row["captured_at"]), "booking": fact.booking_reference,
            }  # fmt: skip
            published.append(("visit", data))
        if self.alert:
            alert = Alert(
                id=alert_id, carpark=carpark, lane=lane, plate=row["plate"], reason=row["reason"],
                created_at=self.now,
            )  # fmt: skip
            published.append(("alert", selectors.alert_event_data(alert)))
        published.append(("read", _read_event_data(carpark, lane, read_pk, row)))
        if outcome.open_visit or outcome.close_visit is not None:
            published.append(("occupancy", _occupancy_changed_data(carpark)))
        return published


def _insert_sql(model, values: dict, *, now: datetime, read_fk: str | None = None, returning: str = "id"):
    """An INSERT of a `model` row as an ORM `save()` would write it, from its fields' values by attname (no model
    instance): omitted fields take their defaults, auto_now(_add) ones `now`; `read_fk` is set to the read inserted
    by the CTE `r`. The row is ONE jsonb parameter read by jsonb_populate_record, which types every value by its
    column: a few parameters to send instead of one per column (psycopg's per-parameter work was a fifth of the
    decision's CPU, and it stops caching the parsed statement beyond 50). Returns (statement, parameters)."""
    sql, columns = _insert_statement(model, read_fk, returning)
    record = {}
    for column, attname, auto_now, field in columns:
        if auto_now:
            record[column] = now
        else:
            record[column] = values[attname] if attname in values else field.get_default()
    return sql, [Jsonb(record, dumps=_record_dumps)]


def _jsonable(value):
    if isinstance(value, datetime):
        return value.isoformat()  # aware (USE_TZ): the offset makes it exact
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not a column value _insert_sql can send")


_record_dumps = functools.partial(json.dumps, default=_jsonable, separators=(",", ":"))

_PLAIN_FIELDS = (
    models.BooleanField, models.CharField, models.DateTimeField, models.FloatField, models.ForeignKey,
    models.IntegerField, models.JSONField,
)  # fmt: skip


@functools.cache
def _insert_statement(model, read_fk: str | None, returning: str) -> tuple[str, tuple]:
    """The statement text (only names from the model's metadata) and its columns: (column, attname, auto_now,
    field)."""
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    fields = tuple(f for f in model._meta.concrete_fields if not f.primary_key and f.attname != read_fk)
    for field in fields:  # the fields whose Python values are their JSON values (datetimes as ISO 8601)
        if not isinstance(field, _PLAIN_FIELDS) or getattr(field, "encoder", None) is not None:
            raise TypeError(f"{field!r}: teach _insert_sql how Django prepares such a field")
    columns = [quote(f.column) for f in fields]
    values = list(columns)
    if read_fk is not None:
        columns.append(quote(read_fk))
        values.append("(SELECT id FROM r)")
    table = quote(model._meta.db_table)
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(values)} "  # noqa: S608  (metadata only)
        f"FROM jsonb_populate_record(NULL::{table}, %s) RETURNING {returning}"
    )
    auto_now = [isinstance(f, models.DateTimeField) and (f.auto_now or f.auto_now_add) for f in fields]
    return sql, tuple(zip([f.column for f in fields], [f.attname for f in fields], auto_now, fields, strict=True))


def _booking_id(outcome: rules.Outcome) -> int | None:
    if outcome.booking_id:
        return outcome.booking_id
    if isinstance(outcome.booking, rules.BookingFact):
        return outcome.booking.id
    if isinstance(outcome.booking, rules.VisitFact):
        return outcome.booking.booking_id
    return None


def decision_frame(read_id: str, outcome: rules.Outcome, command: dict | None) -> dict:
    """The `decision` frame; `command` is the BarrierCommand's fields (command_id, expires_at) when it opens."""
    return {
        "type": "decision",
        "read_id": read_id,
        "action": outcome.action,
        "reason": outcome.reason,
        "match": outcome.match,
        "booking": outcome.booking_reference if outcome.booking_reference else None,
        "command_id": command["command_id"] if command else None,
        "expires_at": iso(command["expires_at"]) if command else None,
        "duplicate": False,
    }


def _repeat_outcome(prior: dict) -> rules.Outcome:
    """Rule 3: the same plate on this lane within repeat_window_s after a read that opened the barrier."""
    booking = None
    if prior["booking_id"]:
        booking = rules.BookingFact(id=prior["booking_id"], plate="", key="", reference=prior["reference"])
    match = Match(prior["match"]) if prior["match"] else None
    return rules.Outcome(Action.OPEN, Reason.REPEAT, match=match, booking=booking, permit_id=prior["permit_id"])


def _stale_outcome(read, policy, facts: rules.Facts, entry: bool, local_action: str) -> rules.Outcome:
    """Rule 2: an old read is applied to visits as if the barrier had opened for it (unless the controller denied)."""
    outcome = rules.Outcome(Action.NONE, Reason.STALE)
    if local_action == Action.DENY or not entry:
        return outcome
    linked = rules.entry_match(read, policy, facts)
    if linked is not None and linked.action == Action.OPEN:
        outcome.match, outcome.booking, outcome.booking_id = linked.match, linked.booking, linked.booking_id
        outcome.permit_id, outcome.vehicle_plate = linked.permit_id, linked.vehicle_plate
    return outcome


def decided_of(*, lane: Lane, context: DecisionContext, device_id: str, read_id: str, plate: str,
               read: rules.Read, now: datetime, candidates: list | None, region: str, vehicle: dict | None,
               retransmit: bool, local_action: str, with_command: bool) -> Decided:  # fmt: skip
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


def write_with_orm(decided: Decided) -> None:
    """Write what `decided` decided through the models and the visits' helpers, in the caller's transaction; its
    events leave after the commit."""
    lane, outcome, local_action = decided.lane, decided.outcome, decided.read_row["local_action"]
    carpark = lane.carpark
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
            carpark=carpark, lane=lane, plate=row.plate, reason=outcome.reason, read=row, policy=lane_policy(lane),
            checked=True,
        )  # fmt: skip
    if outcome.hold_visit is not None and not decided.stale:
        visit_held.send(sender=PlateRead, visit_id=outcome.hold_visit.id, lane=lane, alert=alert)
    _publish_read(carpark, lane, row)
    if delta is not None:
        _publish_occupancy_changed(carpark)
