"""Staff's refunds: part of a paid booking given back, for a reason that is required and audited.

The booking's price stays what was sold; once the provider has paid it back, accounting's refund_record posts the
part beyond what the booking owes back as an allowance off the sale (its VAT reversed at the rate charged)."""

from decimal import Decimal

from django.db import transaction

from apps.bookings.models import Booking
from apps.payments.models import Payment, Refund
from apps.payments.services import RefundInvalid, refund_request


def payment_refund_by_staff(*, payment_id: int, amount: Decimal, reason: str, actor) -> Refund:
    with transaction.atomic():
        payment = Payment.objects.select_for_update().select_related("booking").get(pk=payment_id)
        booking = Booking.objects.select_for_update(of=("self",)).get(pk=payment.booking_id)
        if booking.status not in (Booking.Status.CANCELLED, Booking.Status.EXPIRED) and amount >= booking.price:
            raise RefundInvalid("to give all of it back, cancel the booking")
        return refund_request(payment_id=payment.pk, amount=amount, reason=reason, actor=actor)
