"""Card payments' jobs: webhook events applied, refunds sent (and retried), late intents reconciled, payouts
imported."""

from apps.core.jobs import job, periodic
from apps.payments import payouts, services


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


@periodic("payments.import_payouts", hour={5}, minute={40})
def import_payouts() -> None:
    """Daily: Stripe's payouts of the last month imported, matched and the paid ones posted (apps.payments.payouts)."""
    payouts.payouts_import(days=30)
