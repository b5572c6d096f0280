"""The flight-status feed's tokens: made by `manage.py create_feed_token`, kept as SHA-256 hashes like the agents'
API tokens (apps.agents.services), checked on each POST to /api/ops/v1/flight-status."""

import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from apps.agents.services import token_hash
from apps.ground.models import FeedToken

TOKEN_PREFIX = "pgf_"  # noqa: S105  (a public marker that makes leaked tokens recognisable, not a secret)
LAST_USED_EVERY = timedelta(minutes=1)  # a busy feed does not write its token's row on every update


def feed_token_create(*, name: str) -> str:
    """A new feed token; returns the token itself (it cannot be recovered later)."""
    name = name.strip()[:100]
    if not name:
        raise ValueError("a feed token needs a name (who sends with it)")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        FeedToken.objects.create(name=name, prefix=token[:12], token_hash=token_hash(token))
    return token


def feed_token_authenticate(*, token: str) -> FeedToken | None:
    """The live feed token, or None."""
    if not token or len(token) > 200:
        return None
    found = FeedToken.objects.filter(token_hash=token_hash(token), revoked_at__isnull=True).first()
    if found is not None:
        now = timezone.now()
        if found.last_used_at is None or found.last_used_at < now - LAST_USED_EVERY:
            FeedToken.objects.filter(pk=found.pk).update(last_used_at=now)
    return found


def feed_token_revoke(*, token_id: int) -> None:
    """The token stops working at once (revoking twice keeps the first time)."""
    FeedToken.objects.filter(pk=token_id, revoked_at__isnull=True).update(revoked_at=timezone.now())
