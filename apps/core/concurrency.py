"""Calling sync services from async edges."""

from collections.abc import Callable
from functools import partial
from typing import Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections


def _with_fresh_connections(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    close_old_connections()
    try:
        return func(*args, **kwargs)
    finally:
        close_old_connections()  # CONN_MAX_AGE=0: hands the connection back to the pool


async def run_sync(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """Run a sync service in a pooled thread (not Channels' shared one), with connection hygiene.

    For edges whose database work must not queue behind the lane controllers' (SMTP, jobs, bulk uploads).
    """
    return await sync_to_async(partial(_with_fresh_connections, func, *args, **kwargs), thread_sensitive=False)()
