"""Where the gateway's database work runs: never on Channels' single shared thread.

The common plate reads are decided on the loop itself (apps.access.fastpath); the others come here. Decisions get a
dedicated pool of threads (DECISION_THREADS, default half the database pool, at most 8), so
that plate reads neither queue behind each other on one connection nor behind dashboards' or HTTP views' ORM
calls; other device work (connect, heartbeats, results) uses the default pool through
apps.core.concurrency.run_sync. Each decision thread holds one pooled connection for as long as it lives.
"""

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection

from apps.core.concurrency import run_sync


def _decision_threads() -> int:
    """DECISION_THREADS, else half the database pool (at most 8): decisions mostly wait on PostgreSQL, and more of
    them in flight commit together; the other half of the pool stays for everything else."""
    if os.environ.get("DECISION_THREADS"):
        return max(1, int(os.environ["DECISION_THREADS"]))
    pool = settings.DATABASES["default"].get("OPTIONS", {}).get("pool") or {}
    return max(2, min(8, int(pool.get("max_size", 8)) // 2)) if isinstance(pool, dict) else 4


DECISION_THREADS = _decision_threads()

_decisions = ThreadPoolExecutor(max_workers=DECISION_THREADS, thread_name_prefix="decide")


def _on_own_connection(func: Callable[..., Any], /, **kwargs: Any) -> Any:
    """Each decision thread keeps its database connection from one decision to the next (it never serves a request,
    so nothing else would close it): the same PostgreSQL backend, warm, with the decision's statements prepared.
    A decision that fails hands its connection back, so a broken one (database restarted) is replaced."""
    try:
        return func(**kwargs)
    except Exception:
        connection.close()
        raise


async def run_decision(func: Callable[..., Any], /, **kwargs: Any) -> Any:
    """Run a plate-read decision on the decision threads."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_decisions, partial(_on_own_connection, func, **kwargs))


async def run_db(func: Callable[..., Any], /, **kwargs: Any) -> Any:
    """Run any other sync service or selector off the shared thread."""
    return await run_sync(func, **kwargs)
