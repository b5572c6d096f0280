"""Bookings' background jobs: the idempotency keys' clean-up (customers' messages: apps.customers.messages)."""

from datetime import timedelta

from django.utils import timezone

from apps.bookings.models import ApiIdempotencyKey
from apps.core.jobs import periodic

IDEMPOTENCY_TTL = timedelta(hours=24)


@periodic("bookings.expire_idempotency_keys", minute={7})
def expire_idempotency_keys() -> None:
    """Idempotency keys are kept 24 h (docs/operations.md 5); older ones are deleted hourly."""
    ApiIdempotencyKey.objects.filter(created_at__lt=timezone.now() - IDEMPOTENCY_TTL).delete()


@periodic("bookings.expire_unpaid", minute=set(range(60)))
def expire_unpaid() -> None:
    """Website bookings unpaid after their car park's payment window expire and free their spaces (every minute)."""
    from apps.bookings.prepaid import booking_expire, bookings_due_to_expire

    for booking_id in bookings_due_to_expire():
        booking_expire(booking_id=booking_id)


@periodic("bookings.flight_statuses_expire", minute={17})
def flight_statuses_expire() -> None:
    """Forget flight statuses FLIGHT_STATUS_KEEP_DAYS after their date (docs/flight-status.md)."""
    from apps.bookings.flights import flight_statuses_expire as expire

    expire()
