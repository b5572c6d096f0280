"""Lane controller reads: device identity, the facts a decision needs, the allow-list, event payloads."""

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from apps.access import rules
from apps.access.models import Alert, BarrierCommand, BlockedPlate, Device, Permit, Visit
from apps.access.tokens import hash_secret
from apps.bookings.models import Booking, Vehicle
from apps.core import dbtime
from apps.core.plates import lookalike_key, normal_candidates
from apps.core.sql import prepared_cursor


@dataclass(frozen=True)
class DeviceIdentity:
    """What a live connection needs to know about its device, loaded at connect (and again when settings change)."""

    id: str
    carpark_id: int
    carpark_code: str
    lanes: dict[str, str]  # lane code -> direction
    lane_ids: dict[str, int]  # lane code -> Lane id
    settings: dict
    vendor: dict  # Device.settings: vendor mappings (camera id / channel -> lane code)
    token_hash: str = field(repr=False)  # the token's, as loaded: enrolling again replaces it (spec 1.3)


def device_identity(device: Device) -> DeviceIdentity:
    lanes = list(device.lanes.order_by("code"))
    return DeviceIdentity(
        id=str(device.id),
        carpark_id=device.carpark_id,
        carpark_code=device.carpark.code,
        lanes={lane.code: lane.direction for lane in lanes},
        lane_ids={lane.code: lane.id for lane in lanes},
        settings=device.carpark.device_settings(),
        vendor=device.settings or {},
        token_hash=device.token_hash or "",
    )


def device_for_token(*, token: str) -> DeviceIdentity | None:
    """The enrolled, unrevoked device holding `token`, or None."""
    if not token:
        return None
    device = (
        Device.objects.select_related("carpark").filter(token_hash=hash_secret(token), revoked_at__isnull=True).first()
    )
    return device_identity(device) if device is not None else None


def device_identity_by_id(*, device_id: str) -> DeviceIdentity | None:
    device = Device.objects.select_related("carpark").filter(pk=device_id, revoked_at__isnull=True).first()
    return device_identity(device) if device is not None else None


def device_token_is_current(*, device_id: str, token_hash: str) -> bool:
    """Whether `token_hash` is still the unrevoked device's token (not rotated by enrolling again)."""
    return Device.objects.filter(pk=device_id, token_hash=token_hash, revoked_at__isnull=True).exists()


def device_is_active(*, device_id: str) -> bool:
    return Device.objects.filter(pk=device_id, revoked_at__isnull=True).exists()


def carpark_occupancy(*, carpark_id: int) -> int:
    return Visit.objects.filter(carpark_id=carpark_id, exited_at__isnull=True).count()


# --- The facts of one decision (the hot path: few, indexed queries) ---------------------------------------------


@dataclass(frozen=True)
class DecisionContext:
    """Everything a decision reads, loaded after the plate's lock is held (one statement on PostgreSQL)."""

    duplicate: dict | None  # the stored decision when this read_id was already decided
    repeat: dict | None  # the last read of this plate on this lane that opened, within the repeat window
    facts: rules.Facts
    alerted_recently: bool  # an alert for this lane and plate within the repeat window
    visits_around: bool  # other visits or unpaired exits of this vehicle after captured_at (order matters)


def decision_context(
    *, device_id: str, read_id: str, lane_id: int, carpark_id: int, read: rules.Read, policy: rules.Policy,
    entry: bool, now: datetime,
) -> DecisionContext:  # fmt: skip
    return _context_postgresql(device_id, read_id, lane_id, carpark_id, read, policy, entry, now)


def _misread_exit_of(unpaired, plates: set[str]) -> bool:
    """Whether one of these unpaired exits has one of `plates` among its candidates (CONTEXT_SQL's last but one
    branch): a late entry pairs with such an exit (services._unpaired_exit_after), so it is not a simple one."""
    return any(
        plate in plates
        for candidates in unpaired.exclude(candidates=[]).values_list("candidates", flat=True)
        for plate, _score in normal_candidates(candidates)
    )


# One round trip for all the facts of a decision: each branch is an indexed lookup by normal-form plate or
# look-alike key (bookings_vehicle.registration / .lookalike_key, access_visit's partial open-visit indexes,
# access_plateread (lane, plate, captured_at) and (device, read_id), access_alert (lane, plate, created_at)), but
# an entry's look for exits filed under a misread plate with its own among their candidates: the car park's unpaired
# exits captured after it (the partial index read_unpaired_exit), none or a handful.
# Prepared once per pooled connection (apps.core.sql): planning this statement costs more than running it.
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


def _context_postgresql(device_id, read_id, lane_id, carpark_id, read, policy, entry, now) -> DecisionContext:
    params = decision_context_params(
        device_id=device_id, read_id=read_id, lane_id=lane_id, carpark_id=carpark_id, read=read, policy=policy,
        entry=entry, now=now,
    )  # fmt: skip
    with prepared_cursor() as cursor:
        cursor.execute(CONTEXT_SQL, params, prepare=True)
        return decision_context_of_rows(cursor.fetchall(), read=read, policy=policy)


def decision_context_params(*, device_id: str, read_id: str, lane_id: int, carpark_id: int, read: rules.Read,
                            policy: rules.Policy, entry: bool, now: datetime) -> dict:  # fmt: skip
    """CONTEXT_SQL's parameters."""
    usable = sorted(read.usable_plates(policy))
    main_key = read.key if read.main_usable(policy) else ""
    window = timedelta(seconds=policy.repeat_window_s)
    return {
        "device": device_id, "read_id": read_id, "lane": lane_id, "carpark": carpark_id, "plate": read.plate,
        "plates": usable, "keys": sorted({lookalike_key(p) for p in usable}), "key": main_key or None,
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


# --- Offline allow-list ----------------------------------------------------------------------------------------


def allowlist_content(*, carpark_id: int, now: datetime | None = None) -> tuple[list[dict], list[str]]:
    """Permits and confirmed bookings whose window [arrival - early_arrival, departure] meets the next 24 hours,
    one entry per plate; and the block list's plates (device-protocol.md 5)."""
    from apps.carparks.models import CarPark

    now = now or timezone.now()
    horizon = now + timedelta(hours=24)
    carpark = CarPark.objects.only("early_arrival_min").get(pk=carpark_id)
    early = timedelta(minutes=carpark.early_arrival_min)
    entries = [
        _entry(row["plate"], row["lookalike_key"], "permit", row["valid_from"], row["valid_until"])
        for row in Permit.objects.filter(carpark_id=carpark_id, valid_from__lte=horizon, valid_until__gte=now).values(
            "plate", "lookalike_key", "valid_from", "valid_until"
        )
    ]
    vehicles = Vehicle.objects.filter(
        booking__carpark_id=carpark_id,
        booking__status=Booking.Status.CONFIRMED,
        booking__arrival__lte=horizon + early,
        booking__departure__gte=now,
    ).values("registration", "lookalike_key", "booking__arrival", "booking__departure")
    entries += [
        _entry(v["registration"], v["lookalike_key"], "booking", v["booking__arrival"] - early, v["booking__departure"])
        for v in vehicles
    ]
    entries.sort(key=lambda e: (e["plate"], e["kind"], e["valid_from"], e["valid_until"]))
    blocklist = sorted(set(BlockedPlate.objects.filter(carpark_id=carpark_id).values_list("plate", flat=True)))
    return entries, blocklist


def _entry(plate: str, key: str, kind: str, valid_from: datetime, valid_until: datetime) -> dict:
    return {"plate": plate, "key": key, "kind": kind, "valid_from": _iso(valid_from), "valid_until": _iso(valid_until)}


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(timezone.UTC).isoformat().replace("+00:00", "Z")


# --- Event payloads (docs/contracts-internal.md) -----------------------------------------------------------------


def device_event_data(device: Device) -> dict:
    return {
        "device": str(device.id),
        "name": device.name or str(device.id),
        "online": device.online,
        "lanes": list(device.lanes.order_by("code").values_list("code", flat=True)),
        "barriers": device.barriers or {},
        "clock_offset_s": device.clock_offset_s,
    }


def alert_event_data(alert: Alert) -> dict:
    return {
        "id": alert.id,
        "carpark": alert.carpark.code,
        "lane": alert.lane.code if alert.lane_id else None,
        "plate": alert.plate,
        "reason": alert.reason,
        "detail": alert.detail,
        "created_at": _iso(alert.created_at),
        "acknowledged_by": alert.acknowledged_by.get_username() if alert.acknowledged_by_id else None,
    }


def visit_event_data(visit: Visit, carpark, reference: str | None = None) -> dict:
    booking = reference
    if visit.booking_id and booking is None:
        booking = Booking.objects.filter(pk=visit.booking_id).values_list("reference", flat=True).first()
    return {
        "id": visit.id,
        "carpark": carpark.code,
        "plate": visit.plate,
        "entered_at": _iso(visit.entered_at),
        "exited_at": _iso(visit.exited_at),
        "booking": booking,
    }


def command_event_data(command: BarrierCommand, lane) -> dict:
    return {
        "command_id": command.command_id,
        "lane": lane.code,
        "status": command.status,
        "detail": command.detail,
        "issued_by": command.issued_by.get_username() if command.issued_by_id else None,
        "reason": command.reason,
    }


def alerts_open(*, carpark_ids: list[int], limit: int = 50) -> list[dict]:
    """Unacknowledged alerts, newest first, for dashboards."""
    alerts = (
        Alert.objects.filter(carpark_id__in=carpark_ids, acknowledged_at__isnull=True)
        .select_related("carpark", "lane", "acknowledged_by")
        .order_by("-created_at")[:limit]
    )
    return [alert_event_data(a) for a in alerts]


def devices_of_carparks(*, carpark_ids: list[int]) -> list[dict]:
    """Lane controllers and their online state, for dashboards."""
    devices = Device.objects.filter(carpark_id__in=carpark_ids, revoked_at__isnull=True).order_by("name")
    return [device_event_data(d) for d in devices.prefetch_related("lanes")]
