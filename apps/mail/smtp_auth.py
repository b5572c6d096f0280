"""SMTP AUTH of agents' systems: the password check, throttled like logins.

Failed attempts are counted per login and per client address in Django's cache (Redis when REDIS_URL is set, so
every `serve` process sees the same counts). Once either count reaches its limit, AUTH is a temporary failure
without looking at the password, even a right one, until the window (counted from the first failure) has passed:
a guesser learns nothing more, and the password hasher's CPU is not spent on it.

Each attempt is counted before its password is checked and uncounted when it succeeds or is throttled, so that
attempts made in parallel cannot all slip under the limit while their hashes are being computed.
"""

import contextlib
import enum
import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from apps.mail import selectors


class AuthOutcome(enum.Enum):
    OK = "ok"
    INVALID = "invalid"
    THROTTLED = "throttled"


@dataclass(frozen=True)
class AuthAttempt:
    outcome: AuthOutcome
    agent_ids: frozenset[int] = frozenset()  # when OK: the agents the client may now act for


def smtp_auth_attempt(*, username: str, password: str, client: str) -> AuthAttempt:
    """Check an agent's SMTP login from a client address (its IP), counting a failure against both."""
    login = hashlib.sha256(username.encode("utf-8", "surrogateescape")).hexdigest()  # any bytes, fixed length
    limits = {
        f"mail:smtp-auth-failures:login:{login}": settings.SMTP_AUTH_FAILURES_PER_LOGIN,
        f"mail:smtp-auth-failures:client:{client}": settings.SMTP_AUTH_FAILURES_PER_CLIENT,
    }
    counts = {key: _count_one_more(key) for key in limits}
    if any(counts[key] > limit for key, limit in limits.items()):
        _uncount(limits)
        return AuthAttempt(AuthOutcome.THROTTLED)
    agent_ids = selectors.smtp_login_agent_ids(username=username, password=password)
    if agent_ids:
        _uncount(limits)
        return AuthAttempt(AuthOutcome.OK, agent_ids)
    return AuthAttempt(AuthOutcome.INVALID)


def _count_one_more(key: str) -> int:
    cache.add(key, 0, timeout=settings.SMTP_AUTH_THROTTLE_WINDOW_S)  # the window starts with the first failure
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr: a new window
        cache.add(key, 1, timeout=settings.SMTP_AUTH_THROTTLE_WINDOW_S)
        return 1


def _uncount(keys) -> None:
    for key in keys:
        with contextlib.suppress(ValueError):  # expired meanwhile: nothing to take back
            cache.decr(key)
