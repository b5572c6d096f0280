"""Monthly agents' invoices: on the 1st of each month a periodic job fans out one job per agent.

Both are idempotent: invoicing issues only what was not invoiced yet (see invoices.agent_invoices_generate),
so arq running a job twice, or the command being run by hand as well, issues nothing twice.
"""

from datetime import date, timedelta

from django.utils import timezone

from apps.accounting import invoices, selectors
from apps.accounting.ledger import month_start
from apps.core.jobs import enqueue, job, periodic


def previous_month(today: date) -> date:
    return month_start(month_start(today) - timedelta(days=1))


@periodic("accounting.monthly_invoices", day={1}, hour={2}, minute={15})
def monthly_invoices() -> None:
    month = previous_month(timezone.localdate())
    for agent_id in selectors.agent_ids_to_invoice():
        enqueue(
            "accounting.invoice_agent",
            job_id=f"accounting.invoice_agent:{agent_id}:{month:%Y-%m}",
            agent_id=agent_id,
            month=month.isoformat(),
        )


@job("accounting.invoice_agent")
def invoice_agent(*, agent_id: int, month: str) -> None:
    invoices.agent_invoices_generate(agent_id=agent_id, month=date.fromisoformat(month))
