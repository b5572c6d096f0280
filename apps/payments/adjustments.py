"""Staff's refunds: part of a paid booking given back, for a reason that is required and audited.

The money comes off the booking's price (booking_amend with the lower price), so the ledger takes it off the
revenue, and the refund is asked for in the same transaction (the amendment's own refund then finds nothing more
owed)."""

from decimal import Decimal

from django.db import transaction

from apps.bookings.models import Booking
from apps.bookings.services import booking_amend
from apps.payments.models import Payment, Refund
from apps.payments.services import RefundInvalid, refund_request


def payment_refund_by_staff(*, payment_id: int, amount: Decimal, reason: str, actor) -> Refund:
    with transaction.atomic():
        payment = Payment.objects.select_for_update().select_related("booking").get(pk=payment_id)
        booking = Booking.objects.select_for_update(of=("self",)).get(pk=payment.booking_id)
        refund = refund_request(payment_id=payment.pk, amount=amount, reason=reason, actor=actor)
        if booking.status in (Booking.Status.CANCELLED, Booking.Status.EXPIRED):
            return refund  # the booking is not sold any more: its credit is what is refunded
        if amount >= booking.price:
            raise RefundInvalid("to give all of it back, cancel the booking")
        booking_amend(booking=booking, price=booking.price - amount)
    return refund
