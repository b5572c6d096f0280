"""Card payment writes: start a payment (an intent at the provider), confirm it with the browser's card token,
apply what the provider says happened (once, whichever of the browser, a webhook or the reconcile job tells us
first), refund.

Calls to the provider never run inside a database transaction (a slow provider would hold row locks); the rows
record what was asked first, so a call that fails is retried with the same idempotency key. Money reaches the
ledger only through apps.accounting.services.payment_record and refund_record (card clearing against the booking's
receivable; a refund beyond what the booking owes back is an allowance off its sale, VAT reversed).
"""

import logging
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from apps.access.models import Alert
from apps.access.selectors import alert_event_data
from apps.accounting.models import Payment as LedgerPayment
from apps.accounting.services import payment_record, refund_record
from apps.bookings.errors import BookingClosed, BookingInvalid, NoCapacity
from apps.bookings.models import Booking
from apps.bookings.prepaid import booking_payment_confirm
from apps.core import events
from apps.core.jobs import enqueue
from apps.core.services import audit_log_record
from apps.payments.models import Payment, Refund, WebhookEvent
from apps.payments.providers import (
    BadSignature,
    CardDeclined,
    Intent,
    ProviderUnavailable,
    from_minor,
    get_provider,
    provider_name,
    to_minor,
)

__all__ = ["BadSignature", "CardDeclined", "PaymentNotDue", "ProviderUnavailable", "RefundInvalid"]

log = logging.getLogger(__name__)

REFUND_ATTEMPTS = 5
ZERO = Decimal("0.00")


class PaymentNotDue(Exception):
    """Nothing to pay: the booking is not waiting for a payment (paid already, cancelled, an agent's)."""


class RefundInvalid(ValueError):
    pass


def staff_alert(*, booking: Booking, reason: str, detail: str) -> Alert:
    """An alert on the car park's dashboard (after commit), for money that needs a person."""
    alert = Alert.objects.create(carpark=booking.carpark, reason=reason, detail=detail[:200])
    alert = Alert.objects.select_related("carpark", "lane", "acknowledged_by").get(pk=alert.pk)
    events.publish_to_carpark(carpark_id=booking.carpark_id, kind="alert", data=alert_event_data(alert))
    return alert


# --- starting and confirming ------------------------------------------------------------------------------------


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
    if not payment.intent_id:
        return payment
    intent = get_provider(payment.provider).retrieve_intent(payment.intent_id)
    return payment_intent_apply(payment_id=payment.pk, intent=intent)


# --- applying what happened -------------------------------------------------------------------------------------


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
    from datetime import datetime

    out = dict(changes)
    for key in ("arrival", "departure"):
        if key in out:
            out[key] = datetime.fromisoformat(out[key])
    if "price" in out:
        out["price"] = Decimal(out["price"])
    return out


# --- refunds ----------------------------------------------------------------------------------------------------


def refundable(payment: Payment) -> Decimal:
    asked = payment.refunds.exclude(status=Refund.Status.FAILED).aggregate(s=Sum("amount"))["s"] or ZERO
    return payment.amount - asked if payment.status == Payment.Status.SUCCEEDED else ZERO


def refund_request(*, payment_id: int, amount: Decimal, reason: str, actor=None) -> Refund:
    """Ask for money back on a paid card payment (part or all); sent by a job after commit and retried while the
    provider cannot be reached. The reason is required and audited."""
    reason = (reason or "").strip()
    if not reason:
        raise RefundInvalid("a reason is required")
    if not isinstance(amount, Decimal) or amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        raise RefundInvalid("the amount must be a positive number of whole pence")
    with transaction.atomic():
        payment = Payment.objects.select_for_update().select_related("booking__carpark").get(pk=payment_id)
        if amount > refundable(payment):
            raise RefundInvalid(f"at most {refundable(payment)} can be refunded on this payment")
        refund = Refund.objects.create(payment=payment, amount=amount, reason=reason[:300], requested_by=actor)
        audit_log_record(
            action="payments.refund",
            actor=actor,
            actor_label="" if actor else "system",
            obj=refund,
            carpark=payment.booking.carpark,
            data={"booking": payment.booking.reference, "amount": str(amount), "reason": refund.reason},
        )
        enqueue("payments.refund", refund_id=refund.pk)
    return refund


def refunds_for_credit(*, booking_id: int, reason: str, actor=None) -> list[Refund]:
    """Refund to the booking's cards what the ledger says is owed back (its credit balance, less refunds already
    asked for), newest payment first. Inside the booking change's transaction (a signal's receiver)."""
    from apps.accounting.selectors import booking_balance

    asked = Refund.objects.filter(payment__booking_id=booking_id, status=Refund.Status.PENDING).aggregate(
        s=Sum("amount")
    )
    owed = -booking_balance(booking_id) - (asked["s"] or ZERO)
    refunds = []
    paid = Payment.objects.filter(booking_id=booking_id, status=Payment.Status.SUCCEEDED).order_by("-paid_at", "-pk")
    for payment in paid:
        if owed <= 0:
            break
        amount = min(owed, refundable(payment))
        if amount > 0:
            refunds.append(refund_request(payment_id=payment.pk, amount=amount, reason=reason, actor=actor))
            owed -= amount
    return refunds


def refund_attempt(*, refund_id: int) -> Refund:
    """Send a pending refund to the provider (the same idempotency key every time) and post it once done. A
    provider that cannot be reached is tried again later, REFUND_ATTEMPTS times, then staff are alerted."""
    refund = Refund.objects.select_related("payment").get(pk=refund_id)
    if refund.status != Refund.Status.PENDING:
        return refund
    try:
        result = get_provider(refund.payment.provider).refund(
            intent_id=refund.payment.intent_id,
            amount_minor=to_minor(refund.amount),
            idempotency_key=refund.idempotency_key,
        )
        error, gave_up = "", False
    except ProviderUnavailable as exc:
        result, error, gave_up = None, str(exc), refund.attempts + 1 >= REFUND_ATTEMPTS
    except Exception as exc:  # refused by the provider: a person must look
        log.exception("refund %s refused", refund.pk)
        result, error, gave_up = None, str(exc), True
    with transaction.atomic():
        refund = Refund.objects.select_for_update().select_related("payment__booking__carpark").get(pk=refund_id)
        if refund.status != Refund.Status.PENDING:
            return refund
        refund.attempts += 1
        if result is not None and result.status in ("succeeded", "pending"):
            refund.provider_refund_id, refund.status, refund.last_error = result.id, Refund.Status.SUCCEEDED, ""
            refund.ledger_payment = refund_record(
                booking_id=refund.payment.booking_id,
                amount=refund.amount,
                method=LedgerPayment.Method.CARD,
                reason=refund.reason or "refund",
                external_reference=result.id,
                recorded_by=refund.requested_by,
            )
        else:
            refund.last_error = (error or f"refund {result.status if result else 'failed'}")[:300]
            if gave_up or result is not None:
                refund.status = Refund.Status.FAILED
                booking = refund.payment.booking
                staff_alert(
                    booking=booking,
                    reason="refund_failed",
                    detail=f"{booking.reference}: refund of {refund.amount} failed: {refund.last_error}",
                )
            else:
                enqueue("payments.refund", refund_id=refund.pk, defer_s=30 * refund.attempts)
        refund.save()
    return refund


def refund_retry(*, refund_id: int, actor=None) -> Refund:
    """Staff send a failed refund again."""
    with transaction.atomic():
        refund = Refund.objects.select_for_update().select_related("payment__booking__carpark").get(pk=refund_id)
        if refund.status == Refund.Status.FAILED:
            refund.status, refund.attempts = Refund.Status.PENDING, 0
            refund.save(update_fields=["status", "attempts", "updated_at"])
            audit_log_record(
                action="payments.refund_retry", actor=actor, obj=refund, carpark=refund.payment.booking.carpark
            )
            enqueue("payments.refund", refund_id=refund.pk)
    return refund


# --- webhooks and reconciliation --------------------------------------------------------------------------------


def webhook_receive(*, provider: str, payload: bytes, signature: str) -> WebhookEvent:
    """Verify and store a provider's event; its job applies it (once: the event id is unique). BadSignature when
    the signature is missing or wrong: nothing is stored."""
    event = get_provider(provider).parse_webhook(payload, signature)
    with transaction.atomic():
        stored, new = WebhookEvent.objects.get_or_create(
            provider=provider,
            event_id=event.id,
            defaults={"type": event.type, "payload": {"intent_id": event.intent_id, "object_id": event.object_id}},
        )
        if new:
            enqueue("payments.apply_event", event_id=stored.pk)
    return stored


def webhook_event_apply(*, event_id: int) -> None:
    """Apply a stored event: the intent it names is read back from the provider and applied (payment_sync), so a
    replayed, late or reordered event ends the same way. An event about an intent we do not know changes nothing."""
    stored = WebhookEvent.objects.get(pk=event_id)
    if stored.applied_at is not None:
        return
    intent_id = stored.payload.get("intent_id") or ""
    payment = Payment.objects.filter(provider=stored.provider, intent_id=intent_id).first() if intent_id else None
    if payment is not None:
        payment_sync(payment_id=payment.pk)
    WebhookEvent.objects.filter(pk=stored.pk, applied_at__isnull=True).update(applied_at=timezone.now())


def payments_reconcile(*, older_than: timedelta = timedelta(seconds=30), within: timedelta = timedelta(days=2)) -> int:
    """Poll the intents of payments still open after `older_than` (their webhook is late or lost) and send
    refunds still waiting. Returns how many payments it looked at."""
    now = timezone.now()
    open_ids = list(
        Payment.objects.filter(status=Payment.Status.PENDING, created_at__lte=now - older_than)
        .filter(created_at__gte=now - within)
        .exclude(intent_id="")
        .values_list("pk", flat=True)[:200]
    )
    for payment_id in open_ids:
        try:
            payment_sync(payment_id=payment_id)
        except ProviderUnavailable:
            log.warning("reconcile: provider unavailable; payment %s later", payment_id)
            break
    waiting = Refund.objects.filter(status=Refund.Status.PENDING, updated_at__lte=now - timedelta(minutes=5))
    for refund_id in waiting.values_list("pk", flat=True)[:200]:
        refund_attempt(refund_id=refund_id)
    return len(open_ids)
