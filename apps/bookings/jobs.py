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
