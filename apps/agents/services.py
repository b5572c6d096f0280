"""Agents' API tokens: made once and shown once; only a SHA-256 hash is stored, so a leaked database leaks none."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from django.utils import timezone

from apps.agents.models import Agent, ApiToken
from apps.core.recent import Recent

TOKEN_PREFIX = "pgk_"  # noqa: S105  (a public marker that makes leaked tokens recognisable, not a secret)
_LAST_USED_EVERY = timedelta(minutes=1)  # write last_used_at at most this often (not on every request)


class UnknownAgent(LookupError):
    pass


@dataclass(frozen=True)
class TokenOwner:
    """Who a valid token belongs to (loaded with the token in one query, for the request's worker thread)."""

    token_id: int
    agent: Agent

    @property
    def agent_id(self) -> int:
        return self.agent.pk


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def api_token_create(*, agent_code: str, name: str = "") -> str:
    """A new token for the agent; returns the token itself (it cannot be recovered later)."""
    agent = Agent.objects.filter(code=agent_code.strip()).first()
    if agent is None:
        raise UnknownAgent(f"unknown agent {agent_code!r}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        ApiToken.objects.create(agent=agent, name=name[:100], prefix=token[:12], token_hash=token_hash(token))
    return token


# Valid tokens seen in the last few seconds, per process (apps.core.recent): an agent's burst of requests costs one
# look-up. The price: a token revoked (or an agent deactivated) in another process keeps working here for up to
# RECENT_S seconds.
RECENT_S = 5.0
_recent: Recent[str, TokenOwner | None] = Recent(RECENT_S, most=10_000)


def api_token_authenticate(*, token: str) -> TokenOwner | None:
    """The owner of a live token of an active agent, or None."""
    if not token or len(token) > 200:
        return None
    digest = token_hash(token)
    return _recent.get(digest, lambda: _load_owner(digest), keep=lambda owner: owner is not None)


def _load_owner(digest: str) -> TokenOwner | None:
    row = (
        ApiToken.objects.filter(token_hash=digest, revoked_at__isnull=True, agent__active=True)
        .select_related("agent")
        .only("id", "last_used_at", "agent")
        .first()
    )
    if row is None:
        return None
    now = timezone.now()
    if row.last_used_at is None or now - row.last_used_at > _LAST_USED_EVERY:
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
    return TokenOwner(token_id=row.pk, agent=row.agent)


def api_token_revoke(*, token_id: int) -> None:
    ApiToken.objects.filter(pk=token_id, revoked_at__isnull=True).update(revoked_at=timezone.now())
    _recent.forget_where(lambda owner: owner.token_id == token_id)


def agent_smtp_password_set(*, agent_code: str, password: str) -> str:
    """Require SMTP AUTH for the agent's booking mail, with this password (kept only as a Django password hash).
    The login is the agent's SMTP user name, its code when it has none. Returns the login.

    Raises UnknownAgent, or ValidationError for a password the password validators refuse."""
    if not Agent.objects.filter(code=agent_code.strip()).exists():
        raise UnknownAgent(f"unknown agent {agent_code!r}")
    validate_password(password)
    password_hash = make_password(password)  # slow on purpose: outside the transaction
    with transaction.atomic():
        agent = Agent.objects.select_for_update().filter(code=agent_code.strip()).first()
        if agent is None:
            raise UnknownAgent(f"unknown agent {agent_code!r}")
        agent.smtp_username = agent.smtp_username or agent.code
        agent.smtp_password_hash = password_hash
        agent.save(update_fields=["smtp_username", "smtp_password_hash"])
    return agent.smtp_username
