"""Card payments' jobs: webhook events applied, refunds sent (and retried), late intents reconciled."""

from apps.core.jobs import job, periodic
from apps.payments import services


@job("payments.apply_event")
def apply_event(*, event_id: int) -> None:
    services.webhook_event_apply(event_id=event_id)


@job("payments.refund")
def refund(*, refund_id: int) -> None:
    services.refund_attempt(refund_id=refund_id)


@periodic("payments.reconcile", minute=set(range(60)))
def reconcile() -> None:
    """Every minute: intents whose webhook is late are polled; refunds still waiting are sent again."""
    services.payments_reconcile()
