"""A booking's history for its customer: one BookingChange per created / confirmed (a booking that waited for its
payment is paid) / amended / cancelled, recorded by receivers of the bookings' own signals (in the same transaction),
the actor taken from apps.core.actor."""

from datetime import datetime

from apps.bookings import signals
from apps.bookings.models import Booking, BookingChange
from apps.core import actor

FIELDS = ("carpark", "arrival", "departure", "vehicles", "flight_outbound", "flight_return", "price", "status")


def snapshot(booking: Booking) -> dict:
    return {
        "carpark": booking.carpark.code,
        "arrival": booking.arrival.isoformat(),
        "departure": booking.departure.isoformat(),
        "vehicles": ", ".join(v.registration_raw or v.registration for v in booking.vehicles.all()),
        "flight_outbound": booking.flight_outbound,
        "flight_return": booking.flight_return,
        "price": f"{booking.price} {booking.currency}",
        "status": booking.status,
    }


def record(booking: Booking, action: str) -> BookingChange:
    now = snapshot(booking)
    before = {}
    if action != "created":  # a booking made in this transaction has no change before this one
        earlier = BookingChange.objects.filter(booking=booking).order_by("-at", "-pk")
        before = earlier.values_list("snapshot", flat=True).first() or {}
    changes = [{"field": f, "from": before.get(f), "to": now[f]} for f in FIELDS if before and before.get(f) != now[f]]
    kind, label = actor.current()
    if kind == "system" and action in ("created", "confirmed"):  # a booking's payment is its customer's act
        kind = {"web": "customer", "api": "agent", "email": "agent", "staff": "staff"}.get(booking.source, kind)
    return BookingChange.objects.create(
        booking=booking, action=action, actor=kind, actor_label=label, changes=changes, snapshot=now
    )


def booking_history(*, booking_id: int) -> list[dict]:
    """The booking's changes, oldest first, with times as datetimes (for the car park's local time)."""
    rows = BookingChange.objects.filter(booking_id=booking_id).order_by("at", "pk")
    out = []
    for row in rows.values("at", "action", "actor", "actor_label", "changes"):
        for change in row["changes"]:
            for side in ("from", "to"):
                if change["field"] in ("arrival", "departure") and change[side]:
                    change[side] = datetime.fromisoformat(change[side])
        out.append(row)
    return out


def _on_created(sender, booking, **kwargs):
    record(booking, "created")


def _on_amended(sender, booking, **kwargs):
    record(booking, "amended")


def _on_confirmed(sender, booking, **kwargs):
    record(booking, "confirmed")


def _on_cancelled(sender, booking, **kwargs):
    record(booking, "cancelled")


def connect() -> None:
    signals.booking_created.connect(_on_created, dispatch_uid="bookings.history.created")
    signals.booking_amended.connect(_on_amended, dispatch_uid="bookings.history.amended")
    signals.booking_confirmed.connect(_on_confirmed, dispatch_uid="bookings.history.confirmed")
    signals.booking_cancelled.connect(_on_cancelled, dispatch_uid="bookings.history.cancelled")
