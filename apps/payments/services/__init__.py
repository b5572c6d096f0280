"""Card payment writes, one module per concern; every function owns its transaction.

Callers import `apps.payments.services` and use the names it re-exports; the modules import each other in one
direction only: common <- refunds <- intents <- webhooks. (Overstay pay links are apps.payments.overstay, payouts
apps.payments.payouts.)
"""

from apps.payments.providers import BadSignature, CardDeclined, ProviderUnavailable
from apps.payments.services.common import PaymentNotDue, RefundInvalid, staff_alert
from apps.payments.services.intents import (
    payment_card_confirm,
    payment_intent_apply,
    payment_start,
    payment_start_top_up,
    payment_sync,
)
from apps.payments.services.refunds import (
    REFUND_ATTEMPTS,
    refund_attempt,
    refund_request,
    refund_retry,
    refundable,
    refunds_for_credit,
)
from apps.payments.services.webhooks import payments_reconcile, webhook_event_apply, webhook_receive

__all__ = [
    "REFUND_ATTEMPTS",
    "BadSignature",
    "CardDeclined",
    "PaymentNotDue",
    "ProviderUnavailable",
    "RefundInvalid",
    "payment_card_confirm",
    "payment_intent_apply",
    "payment_start",
    "payment_start_top_up",
    "payment_sync",
    "payments_reconcile",
    "refund_attempt",
    "refund_request",
    "refund_retry",
    "refundable",
    "refunds_for_credit",
    "staff_alert",
    "webhook_event_apply",
    "webhook_receive",
]
