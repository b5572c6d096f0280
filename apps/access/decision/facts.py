"""What a decision reads, under the vehicle's lock: the lane with its car park's policies (lane_statement) and every
fact the rules need (CONTEXT_SQL), prepared statements sent for a whole batch in one round trip (batch.py)."""

import functools
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import DEFAULT_DB_ALIAS, connection

from apps.access import rules
from apps.carparks.models import CarPark, Lane
from apps.core import dbtime, plates


def plate_read_of(*, plate: str, score: float, captured_at: datetime, candidates: list | None) -> rules.Read:
    return rules.Read(
        plate=plates.normalise(plate)[:32],
        key=plates.lookalike_key(plate)[:32],
        score=score,
        captured_at=captured_at,
        candidates=plates.normal_candidates(candidates),
    )


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


@dataclass(frozen=True)
class DecisionContext:
    """Everything a decision reads, loaded after the plate's lock is held (one statement on PostgreSQL)."""

    duplicate: dict | None  # the stored decision when this read_id was already decided
    repeat: dict | None  # the last read of this plate on this lane that opened, within the repeat window
    facts: rules.Facts
    alerted_recently: bool  # an alert for this lane and plate within the repeat window
    visits_around: bool  # other visits or unpaired exits of this vehicle after captured_at (order matters)


# One round trip for all the facts of a decision: each branch is an indexed lookup by normal-form plate or
# look-alike key (bookings_vehicle.registration / .lookalike_key, access_visit's partial open-visit indexes,
# access_plateread (lane, plate, captured_at) and (device, read_id), access_alert (lane, plate, created_at)), but
# an entry's look for exits filed under a misread plate with its own among their candidates: the car park's unpaired
# exits captured after it (the partial index read_unpaired_exit), none or a handful.
# Prepared once per connection: planning this statement costs more than running it.
# No occupancy count here: it grows with the car park, and the dashboards recount once per flush anyway.
# An open visit's 'departure' is its booking's due_out: the booked departure, or later when the return flight lands
# late (apps.bookings.flights), so the overstay follows the flight.
CONTEXT_SQL = """
SELECT 'duplicate', jsonb_build_object('decision', r.decision)
  FROM access_plateread r WHERE r.device_id = %(device)s AND r.read_id = %(read_id)s
UNION ALL (
SELECT 'repeat', jsonb_build_object('booking_id', r.booking_id, 'reference', b.reference, 'permit_id', r.permit_id,
                                     'match', r.match)
  FROM access_plateread r LEFT JOIN bookings_booking b ON b.id = r.booking_id
 WHERE r.lane_id = %(lane)s AND r.plate = %(plate)s AND r.action = 'open'
   AND r.captured_at BETWEEN %(window_start)s AND %(at)s
 ORDER BY r.captured_at DESC LIMIT 1)
UNION ALL
SELECT 'blocked', jsonb_build_object('id', p.id, 'plate', p.plate, 'key', p.lookalike_key)
  FROM access_blockedplate p
 WHERE %(entry)s AND p.carpark_id = %(carpark)s
   AND (p.plate = ANY(%(plates)s::text[]) OR p.lookalike_key = ANY(%(keys)s::text[]))
UNION ALL
SELECT 'visit', jsonb_build_object('id', v.id, 'plate', v.plate, 'key', v.lookalike_key, 'entered_at', v.entered_at,
                                    'booking_id', v.booking_id, 'reference', b.reference, 'departure', b.due_out,
                                    'permit_id', v.permit_id)
  FROM access_visit v LEFT JOIN bookings_booking b ON b.id = v.booking_id
 WHERE v.carpark_id = %(carpark)s AND v.exited_at IS NULL
   AND (v.plate = ANY(%(plates)s::text[]) OR v.lookalike_key = %(key)s::text)
UNION ALL
SELECT 'permit', jsonb_build_object('id', p.id, 'plate', p.plate, 'key', p.lookalike_key)
  FROM access_permit p
 WHERE %(entry)s AND p.carpark_id = %(carpark)s AND p.valid_from <= %(at)s AND p.valid_until >= %(at)s
   AND (p.plate = ANY(%(plates)s::text[]) OR p.lookalike_key = %(key)s::text)
UNION ALL
SELECT 'booking', jsonb_build_object('id', b.id, 'plate', v.registration, 'key', v.lookalike_key,
                                      'reference', b.reference, 'status', b.status, 'arrival', b.arrival,
                                      'departure', b.departure)
  FROM bookings_vehicle v JOIN bookings_booking b ON b.id = v.booking_id
 WHERE %(entry)s AND b.carpark_id = %(carpark)s
   AND (v.registration = ANY(%(plates)s::text[]) OR v.lookalike_key = %(key)s::text)
UNION ALL (
SELECT 'alerted', '{}'::jsonb FROM access_alert a
 WHERE a.lane_id = %(lane)s AND a.plate = %(plate)s AND a.created_at >= %(alert_since)s LIMIT 1)
UNION ALL (
SELECT 'around', '{}'::jsonb FROM access_plateread r
 WHERE r.carpark_id = %(carpark)s AND r.lookalike_key = %(main_key)s AND r.unpaired_exit AND r.captured_at > %(at)s
 LIMIT 1)
UNION ALL (
SELECT 'around', '{}'::jsonb FROM access_plateread r
 WHERE %(entry)s AND r.carpark_id = %(carpark)s AND r.unpaired_exit AND r.captured_at > %(at)s AND EXISTS (
       SELECT FROM jsonb_array_elements(r.candidates) c
        WHERE regexp_replace(upper(c->>'plate'), '[^A-Z0-9]', '', 'g') = ANY(%(plates)s::text[]))
 LIMIT 1)
UNION ALL (
SELECT 'around', '{}'::jsonb FROM access_visit v
 WHERE v.carpark_id = %(carpark)s AND v.lookalike_key = %(main_key)s
   AND (v.entered_at > %(at)s OR v.exited_at > %(at)s)
 LIMIT 1)
"""


def decision_context_params(*, device_id: str, read_id: str, lane_id: int, carpark_id: int, read: rules.Read,
                            policy: rules.Policy, entry: bool, now: datetime) -> dict:  # fmt: skip
    """CONTEXT_SQL's parameters."""
    usable = sorted(read.usable_plates(policy))
    main_key = read.key if read.main_usable(policy) else ""
    window = timedelta(seconds=policy.repeat_window_s)
    return {
        "device": device_id, "read_id": read_id, "lane": lane_id, "carpark": carpark_id, "plate": read.plate,
        "plates": usable, "keys": sorted({plates.lookalike_key(p) for p in usable}), "key": main_key or None,
        "main_key": read.key, "at": read.captured_at, "window_start": read.captured_at - window, "entry": entry,
        "alert_since": now - window,
    }  # fmt: skip


def decision_context_of_rows(result: list[tuple], *, read: rules.Read, policy: rules.Policy) -> DecisionContext:
    """The DecisionContext of CONTEXT_SQL's rows."""
    rows: dict[str, list[dict]] = {}
    for kind, data in result:
        rows.setdefault(kind, []).append(json.loads(data) if isinstance(data, str) else data)
    duplicate = rows.get("duplicate", [None])[0]
    facts = rules.Facts(
        blocked=tuple(rules.Plated(id=r["id"], plate=r["plate"], key=r["key"]) for r in rows.get("blocked", ())),
        open_visits=tuple(
            rules.VisitFact(
                id=r["id"],
                plate=r["plate"],
                key=r["key"],
                entered_at=_dt(r["entered_at"]),
                booking_id=r["booking_id"],
                booking_reference=r["reference"],
                booking_departure=_dt(r["departure"]),
                permit_id=r["permit_id"],
            )
            for r in rows.get("visit", ())
        ),
        permits=tuple(rules.PermitFact(id=r["id"], plate=r["plate"], key=r["key"]) for r in rows.get("permit", ())),
        bookings=tuple(
            rules.BookingFact(
                id=r["id"],
                plate=r["plate"],
                key=r["key"],
                reference=r["reference"],
                status=r["status"],
                arrival=_dt(r["arrival"]),
                departure=_dt(r["departure"]),
            )
            for r in rows.get("booking", ())
        ),
    )
    if not read.usable_plates(policy):
        facts = rules.Facts()
    return DecisionContext(
        duplicate=duplicate["decision"] if duplicate else None,
        repeat=rows.get("repeat", [None])[0] if read.plate else None,
        facts=facts,
        alerted_recently="alerted" in rows,
        visits_around="around" in rows,
    )


def _dt(value: str | None) -> datetime | None:
    return dbtime.from_json(value) if value else None
