"""booking_cancel: a booking cancelled and its days freed."""

from django.db import transaction

from apps.bookings import capacity, sale, signals
from apps.bookings.cancellation import cancellation_fee
from apps.bookings.errors import (
    BookingClosed,
)
from apps.bookings.models import Booking
from apps.bookings.services.common import (
    _stay,
    booking_changes_publish,
)


def booking_cancel(*, booking: Booking) -> Booking:
    """Cancel a booking and free its days. A repeated cancel changes nothing; after arrival: BookingClosed.
    A website booking cancelled inside its car park's cut-off keeps the cancellation fee (apps.bookings.cancellation),
    which the ledger keeps as sold; what was paid beyond it is refunded (apps.payments, on booking_cancelled)."""
    with transaction.atomic():
        current = Booking.objects.select_for_update(of=("self",)).select_related("carpark", "agent").get(pk=booking.pk)
        if current.status in (Booking.Status.CANCELLED, Booking.Status.EXPIRED):
            return current
        if current.status in (Booking.Status.ARRIVED, Booking.Status.DEPARTED):
            raise BookingClosed(f"booking {current.reference} has already arrived")
        previous_status = current.status
        capacity.move_holds(old=_stay(current.carpark, current.arrival, current.departure), new=None)
        sale.release(current)
        current.status = Booking.Status.CANCELLED
        fee = cancellation_fee(current) if previous_status == Booking.Status.CONFIRMED else None
        current.cancellation_fee = fee or None
        current.save(update_fields=["status", "cancellation_fee", "updated_at"])
        signals.booking_cancelled.send(sender=Booking, booking=current, previous_status=previous_status)
        booking_changes_publish(booking_ids=[current.pk])
    return current
