"""Mail jobs: one per stored message, the outbox sweep, error reports (raw mail retention: apps.customers.retention)."""

from apps.core.jobs import job, periodic
from apps.mail import services


@job("mail.process")
def process(*, message_id: int) -> None:
    services.inbound_email_process(message_id=message_id)


@job("mail.error_report")
def error_report(*, message_id: int) -> None:
    services.inbound_email_send_error_report(message_id=message_id)


@periodic("mail.sweep", second=set(range(0, 60, 10)))
def sweep() -> None:
    """Messages the queue never delivered (Redis down at receipt, a process killed after the commit)."""
    services.inbound_email_sweep()
