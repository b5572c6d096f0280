"""Customers' background work: retention (daily)."""

from apps.core.jobs import periodic
from apps.customers import retention


@periodic("customers.retention", hour={3}, minute={17})
def retention_enforce() -> None:
    """Every car park's retention periods (apps.customers.retention), reported in the audit log."""
    retention.retention_enforce()
