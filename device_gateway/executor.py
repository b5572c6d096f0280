"""Where the gateway's database work runs: never on Channels' single shared thread.

Plate reads are decided through apps.access.decision (its own decision threads); other device work (connect,
heartbeats, results) uses the default pool through apps.core.concurrency.run_sync.
"""

from collections.abc import Callable
from typing import Any

from apps.core.concurrency import run_sync


async def run_db(func: Callable[..., Any], /, **kwargs: Any) -> Any:
    """Run a sync service or selector off the shared thread."""
    return await run_sync(func, **kwargs)
