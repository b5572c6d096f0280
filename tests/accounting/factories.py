"""Test helpers: bookings written as the bookings app does, with its signals sent the way its services send them.

Used where a test needs exact control over a booking's life (the hypothesis sequences); the integration tests
go through apps.bookings.services instead.
"""

import itertools
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from apps.bookings import signals
from apps.bookings.models import Booking, Customer

_refs = itertools.count(1)


def make_booking(*, carpark, price="50.00", agent=None, commission=None, days_ahead=3, **extra) -> Booking:
    """Create a booking and send booking_created inside the same transaction (as booking_create does)."""
    n = next(_refs)
    arrival = timezone.now() + timedelta(days=days_ahead)
    with transaction.atomic():
        booking = Booking.objects.create(
            reference=f"PG-T{n:06d}",
            carpark=carpark,
            agent=agent,
            agent_ref=f"A-{n}" if agent else None,
            customer=Customer.objects.create(name=f"Customer {n}"),
            arrival=arrival,
            departure=arrival + timedelta(days=extra.pop("length_days", 5)),
            source="api" if agent else "web",
            price=Decimal(price),
            currency=carpark.currency,
            commission=None if commission is None else Decimal(commission),
            **extra,
        )
        signals.booking_created.send(sender=Booking, booking=booking)
    return booking


def amend_booking(booking: Booking, *, price=None, commission="keep") -> Booking:
    with transaction.atomic():
        booking = Booking.objects.select_for_update().get(pk=booking.pk)
        previous_price, previous_commission = booking.price, booking.commission
        if price is not None:
            booking.price = Decimal(price)
        if commission != "keep":
            booking.commission = None if commission is None else Decimal(commission)
        booking.save()
        signals.booking_amended.send(
            sender=Booking, booking=booking, previous_price=previous_price, previous_commission=previous_commission
        )
    return booking


def cancel_booking(booking: Booking) -> Booking:
    with transaction.atomic():
        booking = Booking.objects.select_for_update().get(pk=booking.pk)
        previous_status = booking.status
        if previous_status != Booking.Status.CANCELLED:
            booking.status = Booking.Status.CANCELLED
            booking.save()
            signals.booking_cancelled.send(sender=Booking, booking=booking, previous_status=previous_status)
    return booking
