"""What the provider tells us: webhooks verified and stored once by event id; a succeeded intent applied as the signed
event carries it (final), in the webhook's own transaction; any other state read back from the provider by a job,
so replayed, late or reordered events end the same way; and the periodic reconcile for webhooks that never come."""

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from apps.core.jobs import enqueue
from apps.payments.models import Payment, Refund, WebhookEvent
from apps.payments.providers import Intent, ProviderUnavailable, get_provider
from apps.payments.services.intents import payment_intent_apply, payment_sync
from apps.payments.services.refunds import refund_attempt

log = logging.getLogger(__name__)


def webhook_receive(*, provider: str, payload: bytes, signature: str) -> WebhookEvent:
    """Verify and store a provider's event, once (the event id is unique), and apply it: a success at once, in the
    same transaction, as it needs nothing more from the provider and a customer waits on it; any other state by a
    job, as it is read back from the provider. BadSignature when the signature is missing or wrong: nothing is
    stored."""
    event = get_provider(provider).parse_webhook(payload, signature)
    facts = {"intent_id": event.intent_id, "object_id": event.object_id}
    if event.succeeded is not None:
        facts["succeeded"] = {"amount_minor": event.succeeded.amount_minor, "currency": event.succeeded.currency}
    with transaction.atomic():
        stored, new = WebhookEvent.objects.get_or_create(
            provider=provider, event_id=event.id, defaults={"type": event.type, "payload": facts}
        )
        if new and event.succeeded is not None:
            _apply(stored)  # should it fail, nothing is stored and the provider sends the event again
        elif new:
            enqueue("payments.apply_event", event_id=stored.pk)
    return stored


def webhook_event_apply(*, event_id: int) -> None:
    """Apply a stored event (the job's side: an event read back from the provider)."""
    _apply(WebhookEvent.objects.get(pk=event_id))


def _apply(stored: WebhookEvent) -> None:
    """Apply an event to the payment of the intent it names: a success as the signed event carried it (final: no
    later event can undo it), anything else read back from the provider (payment_sync), so a replayed, late or
    reordered event ends the same way. An event about an intent we do not know changes nothing."""
    if stored.applied_at is not None:
        return
    intent_id = stored.payload.get("intent_id") or ""
    payment = Payment.objects.filter(provider=stored.provider, intent_id=intent_id).first() if intent_id else None
    succeeded = stored.payload.get("succeeded")
    if payment is not None and succeeded:
        intent = Intent(
            id=intent_id, status="succeeded", amount_minor=succeeded["amount_minor"], currency=succeeded["currency"]
        )
        payment_intent_apply(payment_id=payment.pk, intent=intent)
    elif payment is not None:
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
