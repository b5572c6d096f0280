"""PostgreSQL from the server's event loop, for the hot path whose reply waits for a commit: the SMTP group commit's
insert (apps.mail.receipts).

Why it bypasses Django's database layer: it is sync only, so from the loop it runs on a thread, and the thread
hand-offs plus the GIL contention with the loop cost more than the statement itself (bench/smtp.py). It keeps a
small psycopg AsyncConnectionPool of its own, opened lazily on the running loop with the parameters Django connects
with (DATABASES), and sends its transaction as one pipeline (apps.core.sql.run_async: BEGIN, prepared statements,
COMMIT), whose reply is awaited before anything is answered. What it keeps of Django:
  - errors are Django's (`django_error`: `django.db.DatabaseError` and subclasses, mapped as Django maps them);
  - statements and rows come from the apps' services, shared with their sync paths;
  - events leave through apps.core.events, after the commit.
"""

import asyncio
import contextlib
import select
from collections.abc import AsyncIterator

import psycopg
from django import db as django_db
from django.db import connections
from psycopg_pool import AsyncConnectionPool


def django_error(exc: psycopg.Error) -> django_db.Error:
    """The Django exception for a psycopg one, mapped by Django's own DatabaseErrorWrapper."""
    try:
        with connections["default"].wrap_database_errors:
            raise exc
    except django_db.Error as mapped:
        return mapped


def connect_kwargs(application_name: str) -> dict:
    """psycopg.connect's arguments for the default database, as Django builds them (name, host, user, password,
    port, OPTIONS such as connect_timeout and the server `options`), without what only Django's sync connections
    use (cursor class, adapters, its disabled prepared statements)."""
    params = connections["default"].get_connection_params()
    for key in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(key, None)
    params.setdefault("application_name", application_name)  # pg_stat_activity's name, unless set in OPTIONS
    return params


def _pool_timeout() -> float:
    pool = connections["default"].settings_dict["OPTIONS"].get("pool")
    return pool.get("timeout", 5.0) if isinstance(pool, dict) else 5.0  # DB_POOL_TIMEOUT, as Django's pool


class LoopPool:
    """A small connection pool on the running loop. Its connections are in autocommit mode: callers send their own
    BEGIN and COMMIT with their statements (apps.core.sql.run_async)."""

    def __init__(self, *, name: str, min_size: int = 2, max_size: int = 4, timeout: float | None = None, **kwargs):
        """`kwargs` override the connection's arguments (tests: a proxy's port)."""
        self.loop = asyncio.get_running_loop()
        self.application_name = f"parkgate-{name}"
        self.pool = AsyncConnectionPool(
            # psycopg's automatic preparation stays off: apps.core.sql prepares by name.
            kwargs=connect_kwargs(self.application_name) | kwargs | {"autocommit": True, "prepare_threshold": None},
            min_size=min_size,
            max_size=max_size,
            timeout=_pool_timeout() if timeout is None else timeout,
            open=False,
            name=name,
        )
        self.opened = False

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection]:
        """A pooled connection known to be alive; a transaction left open by the caller's error is rolled back,
        and a broken connection is discarded (the pool replaces it)."""
        conn = await self._alive()
        try:
            yield conn
        except BaseException:
            if not conn.broken:
                with contextlib.suppress(psycopg.Error):
                    await conn.rollback()
            raise
        finally:
            await self.pool.putconn(conn)

    async def _alive(self) -> psycopg.AsyncConnection:
        """A connection known to be alive. PostgreSQL restarting (or terminating a backend) leaves an idle
        connection's socket readable (its goodbye, or EOF): only such a connection costs a check round trip, and a
        dead one is handed back (the pool replaces it) for the next.

        Why not the pool's own `check=AsyncConnectionPool.check_connection`: it sends a round trip on every getconn
        (the hot path's reply waits for each), and after a failed check it sleeps with its reconnection back-off (a
        second, then longer) before checking the next connection, so a reply waited seconds after a restart left a
        few dead ones (docs/performance.md, 2026-12-07). psycopg_pool has no setting for either."""
        if not self.opened:
            await self.pool.open()  # safe to call again; concurrent first callers both wait for it
            self.opened = True
        for _ in range(self.pool.max_size):
            conn = await self.pool.getconn()
            if not readable(conn):
                return conn
            try:
                await conn.execute("", prepare=False)  # reads what arrived; raises if the server hung up
            except psycopg.Error:
                await self.pool.putconn(conn)
                continue
            return conn
        return await self.pool.getconn()

    async def close(self) -> None:
        await self.pool.close()


def readable(conn: psycopg.AsyncConnection | psycopg.Connection) -> bool:
    """Whether an idle connection's socket has something to read: most often the server's goodbye (or EOF)."""
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN)
    return bool(poller.poll(0))


class PerLoop:
    """One LoopPool per running loop, made on first use (a test's new loop gets a new one)."""

    def __init__(self, name: str, *, min_size: int = 2, max_size: int = 4):
        self.name, self.min_size, self.max_size = name, min_size, max_size
        self.current: LoopPool | None = None

    def get(self) -> LoopPool:
        if self.current is None or self.current.loop is not asyncio.get_running_loop():
            self.current = LoopPool(name=self.name, min_size=self.min_size, max_size=self.max_size)
        return self.current

    async def close(self) -> None:
        """Close the pool if it was opened on the running loop (serve's shutdown)."""
        pool, self.current = self.current, None
        if pool is not None and pool.loop is asyncio.get_running_loop():
            await pool.close()
