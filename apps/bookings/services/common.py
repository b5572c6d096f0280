"""Helpers the booking services share: references, stays, vehicles, and telling the dashboards."""

import secrets
from datetime import datetime

from django.db import IntegrityError
from django.utils import timezone

from apps.bookings import capacity
from apps.bookings.capacity import Stay
from apps.bookings.errors import (
    NoCapacity,
)
from apps.bookings.localtime import localize
from apps.bookings.models import Booking, Vehicle
from apps.bookings.pricing import stay_dates
from apps.bookings.selectors import booking_event_data, booking_events_data
from apps.bookings.validation import (
    VehicleInput,
)
from apps.carparks.models import CarPark
from apps.core import events, plates

_REF_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"  # no 0/O, 1/I/L, U: easy to read out on the phone


def new_reference() -> str:
    return "PG-" + "".join(secrets.choice(_REF_ALPHABET) for _ in range(6))


def local_to_utc(carpark: CarPark, local: datetime) -> datetime:
    """A naive local time at the car park -> an aware UTC datetime (aware ones are returned as they are).

    Raises LocalTimeError (a ValueError) for a time that does not exist or is ambiguous across a clock change.
    """
    if local.tzinfo is not None:
        return local
    return localize(local, carpark.tz)


def _stay(carpark: CarPark, arrival: datetime, departure: datetime, allowance: dict | None = None) -> Stay:
    """The car park's days of a stay; `allowance`: the sale's accepted overbooking per day (sale.Sale.stay)."""
    dates = tuple(stay_dates(arrival=arrival, departure=departure, tz=carpark.tz))
    return Stay(carpark.pk, carpark.capacity, dates, dict(allowance or {}))


def _take_holds(carpark: CarPark, old: Stay | None, new: Stay, allow_overbooking: bool) -> bool:
    """Move the holds; True when some day was taken although full (overbooking allowed)."""
    try:
        return bool(capacity.move_holds(old=old, new=new, allow_overbooking=allow_overbooking))
    except capacity.DaysFull as full:
        raise NoCapacity(carpark, full.dates) from None


def _replace_vehicles(booking: Booking, vehicles: list[VehicleInput], *, new: bool = False) -> list[Vehicle]:
    if not new:
        Vehicle.objects.filter(booking=booking).delete()
    return Vehicle.objects.bulk_create(
        Vehicle(
            booking=booking,
            registration_raw=v.raw,
            registration=v.registration,
            lookalike_key=plates.lookalike_key(v.registration),
            make=v.make,
            model=v.model,
            colour=v.colour,
        )
        for v in vehicles
    )


def remember_related(booking: Booking, name: str, rows: list) -> None:
    """A booking's related rows just written, kept on it as a prefetch would have loaded them: the readers of a
    booking made in this transaction (the signals' receivers, the dashboards' event, the API's answer) then use
    them instead of reading them back."""
    related = getattr(booking, name).all()
    related._result_cache, related._prefetch_done = list(rows), True
    booking._prefetched_objects_cache = {**getattr(booking, "_prefetched_objects_cache", {}), name: related}


def _violated_constraint(exc: IntegrityError) -> str | None:
    return getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None)


def booking_changes_publish(
    *, booking_ids: list[int] = (), also_to_carpark_id: int | None = None, bookings: list[Booking] = ()
) -> None:
    """Tell the staff dashboards (after commit) what these bookings are now: their arrivals and departures today
    follow new, moved, cancelled and no-show bookings. `also_to_carpark_id`: a car park the booking moved away from
    (the event names the new one, so its dashboards drop it). `bookings`: ones in hand with their details (made in
    this transaction: `remember_related`), not read again."""
    found = booking_events_data(booking_ids=list(booking_ids)) if booking_ids else []
    for data in found + [booking_event_data(b) for b in bookings]:
        for carpark_id in {data.pop("carpark_id"), also_to_carpark_id} - {None}:
            events.publish_to_carpark(carpark_id=carpark_id, kind="booking", data=data)


def booking_mark_confirmation_sent(*, booking_id: int) -> bool:
    """Record that the confirmation email went out; False when it already had (the job ran twice)."""
    return bool(
        Booking.objects.filter(pk=booking_id, confirmation_sent_at__isnull=True).update(
            confirmation_sent_at=timezone.now()
        )
    )
