"""Refunds: asked for (part or all of a paid card payment, a reason required and audited), sent by a job after commit
with the same idempotency key every time, retried while the provider cannot be reached, then shown to staff.
Posted to the ledger through apps.accounting.services.refund_record once the provider has it."""

import logging
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum

from apps.accounting.models import Payment as LedgerPayment
from apps.accounting.services import refund_record
from apps.core.jobs import enqueue
from apps.core.services import audit_log_record
from apps.payments.models import Payment, Refund
from apps.payments.providers import ProviderUnavailable, get_provider, to_minor
from apps.payments.services.common import ZERO, RefundInvalid, staff_alert

log = logging.getLogger(__name__)

REFUND_ATTEMPTS = 5


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
