"""Website bookings are prepaid: a booking waits as `pending_payment` holding its spaces, is confirmed once its
card payment succeeds (apps.payments calls these), and expires unpaid after its car park's payment window, freeing
them. A cancellation keeps the car park's fee once inside its cut-off (apps.bookings.cancellation).

Like apps.bookings.services, each function owns its transaction and sends the domain signals inside it (the ledger
follows the booking's status: apps.accounting.services.booking_ledger_sync).
"""

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from apps.bookings import capacity, sale, signals
from apps.bookings.cancellation import cancellation_fee  # noqa: F401  (re-exported: the fare's part of prepaid)
from apps.bookings.errors import NoCapacity
from apps.bookings.models import Booking
from apps.bookings.services.common import _stay, booking_changes_publish

ZERO = Decimal("0.00")


def _locked(booking_id: int) -> Booking:
    return (
        Booking.objects.select_for_update(of=("self",))
        .select_related("carpark", "customer", "brand")
        .get(pk=booking_id)
    )


def booking_payment_confirm(*, booking_id: int) -> Booking:
    """The booking's payment has succeeded: confirm it (and send the confirmation email after commit).

    A booking that expired meanwhile takes its spaces again if they are free (NoCapacity otherwise: the caller
    refunds). Already confirmed (the payment applied twice, or a top-up): returned unchanged.
    """
    with transaction.atomic():
        booking = _locked(booking_id)
        expired = booking.status == Booking.Status.EXPIRED
        if not expired and booking.status != Booking.Status.PENDING_PAYMENT:
            return booking
        booking.status, booking.payment_due_by = Booking.Status.CONFIRMED, None
        if expired:
            try:
                capacity.take_new(
                    stay=_stay(booking.carpark, booking.arrival, booking.departure, sale.allowance(booking))
                )
            except capacity.DaysFull as full:
                raise NoCapacity(booking.carpark, full.dates) from None
            sale.retake(booking)
        booking.save(update_fields=["status", "payment_due_by", "updated_at"])
        signals.booking_confirmed.send(sender=Booking, booking=booking)
        booking_changes_publish(booking_ids=[booking.pk])
    return booking


def booking_expire(*, booking_id: int, now: datetime | None = None) -> bool:
    """Expire a booking still unpaid after its payment window: its spaces are freed. False when it was paid (or
    is not due yet): the payment and the expiry lock the same row, so exactly one of them wins."""
    now = now or timezone.now()
    with transaction.atomic():
        booking = _locked(booking_id)
        if booking.status != Booking.Status.PENDING_PAYMENT or booking.payment_due_by > now:
            return False
        capacity.move_holds(old=_stay(booking.carpark, booking.arrival, booking.departure), new=None)
        sale.release(booking)
        booking.status = Booking.Status.EXPIRED
        booking.save(update_fields=["status", "updated_at"])
        signals.booking_cancelled.send(sender=Booking, booking=booking, previous_status=Booking.Status.PENDING_PAYMENT)
        booking_changes_publish(booking_ids=[booking.pk])
    return True


def bookings_due_to_expire(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    now = now or timezone.now()
    rows = Booking.objects.filter(status=Booking.Status.PENDING_PAYMENT, payment_due_by__lte=now)
    return list(rows.order_by("payment_due_by").values_list("pk", flat=True)[:limit])
