"""Return flights: the flight-status feed's updates, and the bookings whose return flight they are.

A booking's return flight on the booking's return date (the departure's local date at the car park) is matched by
the flight number's normal form. Its status and landing are copied onto the booking, and so is the time the car is
due out (`return_ready_at`: landing + the car park's baggage allowance; `Booking.due_out` is the later of that and
the booked departure). The lanes measure an overstay from `due_out`, and meet-and-greet return tasks are due then:
both follow the flight with no code of their own. docs/flight-status.md is the feed's contract.
"""

import re
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.bookings.models import Booking, FlightStatus

# Airline designator (IATA: two letters or digits, or ICAO: three letters), the number, an optional suffix.
_FLIGHT = re.compile(r"^([A-Z]{3}|[A-Z0-9]{2})0*(\d{1,4})([A-Z]?)$")
# A landing further than this from the schedule is a feed error, not a delay: refused with a reason.
MAX_SHIFT = timedelta(days=2)
LIVE_STATUSES = (Booking.Status.CONFIRMED, Booking.Status.ARRIVED)


class FlightUpdateRefused(ValueError):
    """An update the feed sent that cannot be right (the message says why)."""


def flight_number_normal(raw: str) -> str:
    """`BA118`, `BA0118`, `ba 118` -> `BA0118`; "" when it is not a flight number (kept as typed elsewhere)."""
    compact = re.sub(r"[\s\-/.]", "", (raw or "").upper())
    match = _FLIGHT.match(compact)
    if not match:
        return ""
    airline, number, suffix = match.groups()
    return f"{airline}{int(number):04d}{suffix}"


def _return_date(booking_departure: datetime, tz) -> date:
    return timezone.localtime(booking_departure, tz).date()


def booking_flight_fields(*, carpark, flight_return: str, departure: datetime) -> dict:
    """The flight columns of a booking with this return flight and departure (set by the booking services)."""
    key = flight_number_normal(flight_return)
    status = FlightStatus.objects.filter(flight=key, date=_return_date(departure, carpark.tz)).first() if key else None
    return {"flight_return_key": key, **_from_status(status, carpark)}


def _from_status(status: FlightStatus | None, carpark) -> dict:
    if status is None:
        return {"return_status": "", "return_estimated": None, "return_ready_at": None}
    landing = status.landing
    ready = landing + timedelta(minutes=carpark.baggage_allowance_min) if landing else None
    return {"return_status": status.status, "return_estimated": landing, "return_ready_at": ready}


def _parse_time(value, field: str) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise FlightUpdateRefused(f"{field}: not an ISO 8601 time ({value!r})") from None
    if timezone.is_naive(parsed):
        raise FlightUpdateRefused(f"{field}: give a UTC offset (e.g. 2027-07-17T14:05:00Z)")
    return parsed


def _clean(update: dict, received_at: datetime) -> dict:
    """The update's fields checked and in normal form, or FlightUpdateRefused."""
    if not isinstance(update, dict):
        raise FlightUpdateRefused("each update is an object")
    flight = flight_number_normal(str(update.get("flight") or ""))
    if not flight:
        raise FlightUpdateRefused(f"flight: not a flight number ({update.get('flight')!r})")
    try:
        day = date.fromisoformat(str(update.get("date") or ""))
    except ValueError:
        raise FlightUpdateRefused(f"date: not a date YYYY-MM-DD ({update.get('date')!r})") from None
    status = update.get("status")
    if status not in FlightStatus.Status.values:
        raise FlightUpdateRefused(f"status: one of {', '.join(FlightStatus.Status.values)} ({status!r})")
    scheduled = _parse_time(update.get("scheduled"), "scheduled")
    if scheduled is None:
        raise FlightUpdateRefused("scheduled: required")
    if abs(scheduled.date() - day) > timedelta(days=1):
        raise FlightUpdateRefused(f"scheduled {scheduled.isoformat()} is not on the flight's date {day}")
    times = {name: _parse_time(update.get(name), name) for name in ("estimated", "actual")}
    for name, value in times.items():
        if value is not None and abs(value - scheduled) > MAX_SHIFT:
            raise FlightUpdateRefused(
                f"{name} {value.isoformat()} is days away from the schedule ({scheduled.isoformat()})"
            )
    reported_at = _parse_time(update.get("updated_at"), "updated_at") or received_at
    return {
        "flight": flight,
        "date": day,
        "status": status,
        "scheduled": scheduled,
        **times,
        "reported_at": reported_at,
    }


def flight_statuses_report(*, updates: list) -> list[dict]:
    """Apply the feed's updates, each in its own transaction; one result per update, in order:
    `{"flight", "date", "result": "applied" | "unchanged" | "stale" | "refused", "reason"?, "bookings"?}`."""
    received_at = timezone.now()
    results = []
    for update in updates:
        try:
            clean = _clean(update, received_at)
        except FlightUpdateRefused as exc:
            given = update if isinstance(update, dict) else {}
            results.append(
                {"flight": given.get("flight"), "date": given.get("date"), "result": "refused", "reason": str(exc)}
            )
            continue
        results.append(_flight_status_record(clean))
    return results


_KEPT = ("status", "scheduled", "estimated", "actual")


def _flight_status_record(clean: dict) -> dict:
    answer = {"flight": clean["flight"], "date": clean["date"].isoformat()}
    with transaction.atomic():
        current, created = FlightStatus.objects.select_for_update().get_or_create(
            flight=clean["flight"], date=clean["date"], defaults={k: v for k, v in clean.items() if k not in answer}
        )
        if not created:
            if clean["reported_at"] < current.reported_at:
                return {**answer, "result": "stale"}  # delivered out of order: a newer word is kept
            if all(getattr(current, k) == clean[k] for k in _KEPT):
                return {**answer, "result": "unchanged"}  # the same update again (idempotent)
            for k in (*_KEPT, "reported_at"):
                setattr(current, k, clean[k])
            current.save()
        moved = _bookings_follow(current)
    return {**answer, "result": "applied", "bookings": len(moved)}


def _bookings_follow(status: FlightStatus) -> list[int]:
    """Copy the flight's word onto the live bookings whose return flight it is; their ids."""
    around = datetime.combine(status.date, datetime.min.time(), tzinfo=UTC)
    candidates = (
        Booking.objects.select_for_update(of=("self",))
        .select_related("carpark")
        .filter(
            flight_return_key=status.flight,
            status__in=LIVE_STATUSES,
            departure__gte=around - timedelta(days=1),
            departure__lt=around + timedelta(days=2),
        )
    )
    moved = []
    for booking in candidates:
        if _return_date(booking.departure, booking.carpark.tz) != status.date:
            continue
        fields = _from_status(status, booking.carpark)
        if all(getattr(booking, k) == v for k, v in fields.items()):
            continue
        for k, v in fields.items():
            setattr(booking, k, v)
        booking.save(update_fields=[*fields, "updated_at"])
        moved.append(booking.pk)
    if moved:
        from apps.bookings.services import booking_changes_publish  # services import this module

        booking_changes_publish(booking_ids=moved)
    return moved


def flight_statuses_expire(*, now: datetime | None = None) -> int:
    """Forget flights whose date is FLIGHT_STATUS_KEEP_DAYS past (their bookings keep what was copied)."""
    today = timezone.localdate(now or timezone.now(), UTC)
    cutoff = today - timedelta(days=settings.FLIGHT_STATUS_KEEP_DAYS)
    deleted, _ = FlightStatus.objects.filter(date__lt=cutoff).delete()
    return deleted


# A visit's `charge_note` as the visit's own UPDATE sets it (`access_visit.booking_id` is the row's): why an exit
# past the booked departure + grace was not charged, namely that the return flight moved the due-out time; else "".
# One sub-select by key inside that UPDATE: no extra round trip on the barrier's path.
_NO_OVERSTAY_NOTE = """COALESCE((SELECT 'no overstay charge: return flight ' || b.flight_return
 || ' (' || b.return_status || ') moved the car''s due-out time to ' || b.due_out::text FROM bookings_booking b
 WHERE b.id = access_visit.booking_id AND b.due_out > b.departure AND b.departure < %s), '')"""


def no_overstay_note_sql(*, at: datetime, grace_min: int) -> tuple[str, list]:
    """SQL (and its parameters) for `access_visit.charge_note` when an exit at `at` is closed without a charge."""
    return _NO_OVERSTAY_NOTE, [at - timedelta(minutes=grace_min)]
