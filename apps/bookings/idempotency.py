"""The agents' API's `Idempotency-Key`: the first response to a key is replayed for 24 h (docs/operations.md 5)."""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from apps.bookings.models import ApiIdempotencyKey

# --- API idempotency -----------------------------------------------------------------------------------------


class IdempotencyKeyReused(Exception):
    code = "idempotency_key_reused"


IDEMPOTENCY_TTL = timedelta(hours=24)


def idempotent_response(*, agent_id: int, key: str, fingerprint: str, respond) -> tuple[int, dict]:
    """Run `respond()` -> (status, body) once per (agent, key) within 24 h and replay its answer afterwards.

    The key's row is inserted first in the same transaction as the work, so a concurrent request with the same
    key waits on the unique index and then sees the stored answer (never a second booking). Another body under
    the same key: IdempotencyKeyReused.
    """
    with transaction.atomic():
        ApiIdempotencyKey.objects.filter(
            agent_id=agent_id, key=key, created_at__lt=timezone.now() - IDEMPOTENCY_TTL
        ).delete()
        record, created = ApiIdempotencyKey.objects.get_or_create(
            agent_id=agent_id, key=key, defaults={"fingerprint": fingerprint}
        )
        if not created:
            if record.fingerprint != fingerprint:
                raise IdempotencyKeyReused(f"Idempotency-Key {key!r} was used with another request body")
            return record.status_code, record.response
        status, body = respond()
        record.status_code, record.response = status, body
        record.save(update_fields=["status_code", "response"])
    return status, body
