"""Customers' background work: delivering messages, the messages' sweep, and retention (daily)."""

from apps.core.jobs import job, periodic
from apps.customers import messages, retention


@job("customers.deliver")
def deliver(*, message_id: int) -> None:
    messages.customer_message_deliver(message_id=message_id)


@periodic("customers.messages_sweep", second={5})
def messages_sweep() -> None:
    """Reminders, welcome back after exit, overstay charges; failed sends tried again (apps.customers.messages)."""
    messages.customer_messages_sweep()


@periodic("customers.retention", hour={3}, minute={17})
def retention_enforce() -> None:
    """Every car park's retention periods (apps.customers.retention), reported in the audit log."""
    retention.retention_enforce()
