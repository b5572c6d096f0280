"""Who calls the agents' REST API and how much: the bearer token checked on an API worker thread of its own, the
per-token rate limit, and the API's own error (edge plumbing for apps/bookings/api.py)."""

import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections
from ninja.security import HttpBearer

from apps.agents.services import TokenOwner, api_token_authenticate

# --- errors --------------------------------------------------------------------------------------------------


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: Any = None, headers: dict[str, str] | None = None):
        super().__init__(error)
        self.status, self.error, self.detail, self.headers = status, error, detail, headers or {}


# --- authentication and rate limit ---------------------------------------------------------------------------


def _authenticate(token: str) -> TokenOwner:
    """The token's owner, counted against its rate limit; 401 for a token that is unknown, revoked or whose
    agent is inactive."""
    owner = api_token_authenticate(token=token)
    if owner is None:
        raise ApiError(
            401,
            "unauthorized",
            "a valid 'Authorization: Bearer <token>' is required",
            {"WWW-Authenticate": 'Bearer realm="parkgate"'},
        )
    _count_request(owner.token_id)
    return owner


def _count_request(token_id: int) -> None:
    """A fixed one-minute window per token in the shared cache (Redis across processes); 429 once over."""
    limit, window = settings.API_RATE_LIMIT_PER_MINUTE, 60
    now = time.time()
    key = f"api-rate:{token_id}:{int(now // window)}"
    try:
        count = cache.incr(key)
    except ValueError:  # the window's first request (or its key just expired)
        count = 1 if cache.add(key, 1, timeout=window + 5) else cache.incr(key)
    if count > limit:
        retry_after = max(1, math.ceil(window - now % window))
        raise ApiError(
            429,
            "rate_limited",
            f"more than {limit} requests a minute; retry after {retry_after} s",
            {"Retry-After": str(retry_after)},
        )


class AgentToken(HttpBearer):
    """Takes the bearer token from the header without touching the database: each view checks it in the same
    worker-thread call that does the work (`_as_agent`), one thread hop and one connection per request."""

    is_async = True

    async def authenticate(self, request, token: str) -> str | None:
        return token.strip() or None


def _api_threads() -> int:
    """Half the process's database connections (the pool's size), so the API can never starve the other edges."""
    pool = settings.DATABASES["default"].get("OPTIONS", {}).get("pool")
    return max(4, pool.get("max_size", 8) // 2) if isinstance(pool, dict) else 4


# API requests wait mostly on the database: their own pool of threads lets them overlap (the loop's default
# executor has only cpu + 4 threads, shared with every other edge) without queueing behind other edges' work.
_API_EXECUTOR = ThreadPoolExecutor(max_workers=_api_threads(), thread_name_prefix="api")


def _in_api_thread(func):
    close_old_connections()
    try:
        return func()
    finally:
        close_old_connections()  # CONN_MAX_AGE=0: hands the connection back to the pool


async def _as_agent(request, work, *args):
    """Run `work(owner, *args)` in an API worker thread after authenticating the request's token there."""

    def authorised():
        return work(_authenticate(request.auth), *args)

    return await sync_to_async(_in_api_thread, thread_sensitive=False, executor=_API_EXECUTOR)(authorised)
