"""Card payments: start one (an intent at the provider), confirm it with the browser's card token, and apply what
the provider says happened (once, whichever of the browser, a webhook or the reconcile job tells us first): post it
to the ledger and fulfil what it paid for.

Calls to the provider never run inside a database transaction (a slow provider would hold row locks); the rows
record what was asked first, so a call that fails is retried with the same idempotency key. Money reaches the
ledger only through apps.accounting.services.payment_record (card clearing against the booking's receivable).
"""

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from apps.accounting.models import Payment as LedgerPayment
from apps.accounting.services import payment_record
from apps.bookings.errors import BookingClosed, BookingInvalid, NoCapacity
from apps.bookings.models import Booking
from apps.bookings.prepaid import booking_payment_confirm
from apps.payments.models import Payment
from apps.payments.providers import (
    CardDeclined,
    Intent,
    ProviderUnavailable,
    from_minor,
    get_provider,
    provider_name,
    to_minor,
)
from apps.payments.services.common import PaymentNotDue, staff_alert
from apps.payments.services.refunds import refund_request


def payment_start(*, booking_id: int) -> Payment:
    """The payment for a booking waiting for one: its open intent if it has one (a page loaded again), else a new
    intent for the price. ProviderUnavailable when the provider cannot be reached (the customer tries again)."""
    booking = Booking.objects.select_related("carpark").get(pk=booking_id)
    if booking.status not in (Booking.Status.PENDING_PAYMENT,):
        raise PaymentNotDue(f"booking {booking.reference} is {booking.status}")
    name = provider_name()
    payment = (
        Payment.objects.filter(booking=booking, purpose=Payment.Purpose.BOOKING, status=Payment.Status.PENDING)
        .filter(provider=name, amount=booking.price, currency=booking.currency)
        .exclude(intent_id="")
        .order_by("-pk")
        .first()
    )
    if payment is not None:
        return payment
    payment = Payment.objects.filter(
        booking=booking, purpose=Payment.Purpose.BOOKING, status=Payment.Status.PENDING, intent_id="", provider=name
    ).first() or Payment.objects.create(
        booking=booking, provider=name, amount=booking.price, currency=booking.currency, purpose=Payment.Purpose.BOOKING
    )
    return _create_intent(payment, metadata={"booking": booking.reference})


def payment_start_top_up(*, booking_id: int, changes: dict, amount: Decimal) -> Payment:
    """An amendment that costs more is paid first: a new intent for the difference, the amendment (`changes`, as
    booking_amend takes them, times in ISO form) applied once it is paid (`_fulfil`)."""
    booking = Booking.objects.select_related("carpark").get(pk=booking_id)
    if booking.status != Booking.Status.CONFIRMED or amount <= 0:
        raise PaymentNotDue(f"booking {booking.reference} has nothing to top up")
    payment = Payment.objects.create(
        booking=booking,
        provider=provider_name(),
        amount=amount,
        currency=booking.currency,
        purpose=Payment.Purpose.TOP_UP,
        changes={**changes, "price": str(booking.price + amount)},  # the price paid for, not a later tariff's
    )
    return _create_intent(payment, metadata={"booking": booking.reference, "purpose": "top_up"})


def _create_intent(payment: Payment, metadata: dict) -> Payment:
    try:
        intent = get_provider(payment.provider).create_intent(
            amount_minor=to_minor(payment.amount),
            currency=payment.currency,
            metadata={**metadata, "payment": payment.pk},
            idempotency_key=payment.idempotency_key,
        )
    except ProviderUnavailable as exc:
        Payment.objects.filter(pk=payment.pk).update(last_error=str(exc)[:300], updated_at=timezone.now())
        raise
    payment.intent_id, payment.client_secret = intent.id, intent.client_secret
    payment.save(update_fields=["intent_id", "client_secret", "updated_at"])
    return payment


def payment_card_confirm(*, payment_id: int, card_token: str) -> Intent:
    """Confirm the payment with the card the browser tokenised. Returns the intent: `succeeded` (applied here),
    `requires_action` (3-D Secure: the browser completes it, then asks for payment_sync). CardDeclined with the
    provider's message (this payment fails; the next card starts another); ProviderUnavailable: try again."""
    payment = Payment.objects.get(pk=payment_id)
    if payment.status != Payment.Status.PENDING or not payment.intent_id:
        return get_provider(payment.provider).retrieve_intent(payment.intent_id)
    try:
        intent = get_provider(payment.provider).confirm_intent(
            intent_id=payment.intent_id, card_token=card_token, idempotency_key=payment.idempotency_key
        )
    except CardDeclined as exc:
        # Done with: the next card gets a new intent (payment_start), as an intent whose charge failed may not be
        # confirmed again everywhere (localstripe refuses it).
        Payment.objects.filter(pk=payment.pk, status=Payment.Status.PENDING).update(
            status=Payment.Status.FAILED, last_error=str(exc)[:300], updated_at=timezone.now()
        )
        raise
    payment_intent_apply(payment_id=payment.pk, intent=intent)
    return intent


def payment_sync(*, payment_id: int) -> Payment:
    """Ask the provider how the payment's intent stands and apply it (the browser after 3-D Secure, a webhook's
    job, the reconcile job: the latest state, so events in any order come to the same end)."""
    payment = Payment.objects.get(pk=payment_id)
    if not payment.intent_id or payment.status in (Payment.Status.SUCCEEDED, Payment.Status.MISMATCH):
        return payment  # settled: applying the intent would change nothing, so the provider is not asked
    intent = get_provider(payment.provider).retrieve_intent(payment.intent_id)
    return payment_intent_apply(payment_id=payment.pk, intent=intent)


def payment_intent_apply(*, payment_id: int, intent: Intent) -> Payment:
    """Apply an intent's state to its payment, once: a success is posted to the ledger and confirms what was paid
    for; a cancelled intent fails the payment. Anything else changes nothing yet."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().select_related("booking__carpark").get(pk=payment_id)
        if payment.status != Payment.Status.PENDING and not (
            payment.status == Payment.Status.FAILED and intent.status == "succeeded"
        ):
            return payment
        if intent.status == "canceled":
            payment.status = Payment.Status.FAILED
            payment.save(update_fields=["status", "updated_at"])
            return payment
        if intent.status != "succeeded":
            if intent.error and intent.error != payment.last_error:
                payment.last_error = intent.error[:300]
                payment.save(update_fields=["last_error", "updated_at"])
            return payment
        if intent.amount_minor != to_minor(payment.amount) or intent.currency != payment.currency:
            payment.status = Payment.Status.MISMATCH
            payment.last_error = f"paid {from_minor(intent.amount_minor)} {intent.currency}"
            payment.save(update_fields=["status", "last_error", "updated_at"])
            staff_alert(
                booking=payment.booking,
                reason="payment_mismatch",
                detail=f"{payment.booking.reference}: {payment.last_error}, not {payment.amount} {payment.currency}",
            )
            return payment
        payment.ledger_payment = payment_record(
            booking_id=payment.booking_id,
            amount=payment.amount,
            method=LedgerPayment.Method.CARD,
            external_reference=payment.intent_id,
            allow_credit=True,
        )
        payment.status, payment.paid_at = Payment.Status.SUCCEEDED, timezone.now()
        payment.save(update_fields=["status", "paid_at", "ledger_payment", "updated_at"])
        _fulfil(payment)
    return payment


def _fulfil(payment: Payment) -> None:
    """What the money was for: confirm the booking (re-booking one that expired), apply the amendment. When that
    can no longer be done, the money goes back at once and staff are told."""
    booking = payment.booking
    try:
        with transaction.atomic():
            if payment.purpose == Payment.Purpose.BOOKING:
                booking_payment_confirm(booking_id=booking.pk)
            elif payment.purpose == Payment.Purpose.TOP_UP:
                from apps.bookings.services import booking_amend

                booking_amend(booking=booking, **_amendment(payment.changes or {}))
            elif payment.purpose == Payment.Purpose.OVERSTAY:
                from apps.payments.overstay import overstay_paid

                overstay_paid(payment)
    except (NoCapacity, BookingInvalid, BookingClosed) as exc:
        refund_request(payment_id=payment.pk, amount=payment.amount, reason=f"could not be fulfilled: {exc}")
        staff_alert(
            booking=booking,
            reason="payment_refunded",
            detail=f"{booking.reference}: paid {payment.amount} {payment.currency} but {exc}; refunded",
        )


def _amendment(changes: dict) -> dict:
    out = dict(changes)
    for key in ("arrival", "departure"):
        if key in out:
            out[key] = datetime.fromisoformat(out[key])
    if "price" in out:
        out["price"] = Decimal(out["price"])
    return out
