"""PostgreSQL from the server's event loop, for the hot path whose reply waits for a commit: the SMTP group commit's
insert (apps.mail.receipts).

Why it bypasses Django's database layer: it is sync only, so from the loop it runs on a thread, and the thread
hand-offs plus the GIL contention with the loop cost more than the statements themselves
(bench/smtp.py). It keeps a small psycopg AsyncConnectionPool of its own, opened lazily on the running
loop with the parameters Django connects with (DATABASES), and sends its transaction as few messages as it can
(`run`): BEGIN, prepared statements, COMMIT, whose reply is awaited before anything is answered. What it keeps
of Django:
  - errors are Django's (`django.db.DatabaseError` and subclasses, mapped from psycopg's as Django maps them);
  - statements and rows come from the apps' services and selectors, shared with their sync paths;
  - events leave through apps.core.events, after the commit.

How statements are sent (`run`): as ONE libpq pipeline per round trip (psycopg's PGconn: a Parse per statement
the first time a connection sees it, then Bind/Execute per statement with its parameters as text values, one Sync,
one flush), so the server gets the whole round trip at once and the loop spends no time quoting literals; psycopg's
own pipeline mode (`conn.pipeline()`) flushes after each statement (docs/performance.md has the comparison).
"""

import asyncio
import contextlib
import functools
import hashlib
import re
import select
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence

import psycopg
from django import db as django_db
from django.db import connections
from psycopg.adapt import PyFormat, Transformer
from psycopg.pq import ExecStatus
from psycopg_pool import AsyncConnectionPool

FATAL_ERROR, PIPELINE_SYNC = ExecStatus.FATAL_ERROR, ExecStatus.PIPELINE_SYNC


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
    BEGIN and COMMIT with their statements (`run`), so a transaction costs no extra round trip for psycopg's
    implicit BEGIN."""

    def __init__(self, *, name: str, min_size: int = 2, max_size: int = 4, timeout: float | None = None, **kwargs):
        """`kwargs` override the connection's arguments (tests: a proxy's port)."""
        self.loop = asyncio.get_running_loop()
        self.application_name = f"parkgate-{name}"
        self.pool = AsyncConnectionPool(
            # psycopg's automatic preparation stays off: `run` prepares by name, and its messages are all unique.
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


class Statement:
    """A statement run by name on the loop's connections: `sql` with %s or %(name)s placeholders (the sync paths'
    text), prepared on a connection the first time `run` sends it there."""

    def __init__(self, sql: str):
        self.names: list[str] = []
        positions: dict[str, int] = {}

        def placeholder(match: re.Match) -> str:
            if match.group(0) == "%%":
                return "%"
            name = match.group(1) or str(len(self.names))
            if name not in positions:
                positions[name] = len(self.names) + 1
                self.names.append(name)
            return f"${positions[name]}"

        text = re.sub(r"%%|%\((\w+)\)s|%s", placeholder, sql)
        self.named = any(not name.isdigit() for name in self.names)
        self.text = text.encode()
        self.name = ("pg_" + hashlib.blake2b(self.text, digest_size=8).hexdigest()).encode()
        self.formats = [PyFormat.TEXT] * len(self.names)

    def __call__(self, params: Sequence | Mapping) -> tuple["Statement", Sequence]:
        """This statement with its parameters, for `run`."""
        if self.named:
            params = [params[name] for name in self.names]
        elif len(params) != len(self.names):
            raise ValueError(f"{len(self.names)} parameters expected, {len(params)} given")
        return self, params


@functools.cache
def statement(sql: str) -> Statement:
    return Statement(sql)


_prepared: "weakref.WeakKeyDictionary[psycopg.AsyncConnection, set[bytes]]" = weakref.WeakKeyDictionary()


async def run(conn: psycopg.AsyncConnection, *items: str | tuple[Statement, Sequence]) -> list[list[tuple]]:
    """Send `items` in one pipeline and wait for all of their results: each a command (BEGIN, COMMIT) or a
    Statement with its parameters (prepared first where this connection has not seen it). Returns the rows of each
    Statement, in order. PostgreSQL skips what follows an error (the transaction is then aborted): psycopg's error.
    """
    pg = conn.pgconn
    prepared = _prepared.get(conn)
    wanted: list[bool] = []  # per result: whether its rows are returned
    tx = Transformer(conn)
    new: set[bytes] = set()
    pg.enter_pipeline_mode()
    try:
        if prepared is None:
            # A new connection, or one whose last run failed part-way (which statements it prepared is unknown).
            prepared = _prepared[conn] = set()
            pg.send_query_params(b"DEALLOCATE ALL", None)
            wanted.append(False)
        for item in items:
            if isinstance(item, str):
                pg.send_query_params(item.encode(), None)
                wanted.append(False)
                continue
            stmt, params = item
            if stmt.name not in prepared and stmt.name not in new:
                pg.send_prepare(stmt.name, stmt.text)
                wanted.append(False)
                new.add(stmt.name)
            pg.send_query_prepared(stmt.name, tx.dump_sequence(params, stmt.formats) if params else None)
            wanted.append(True)
        pg.pipeline_sync()
        results = await _exchange(pg)
        pg.exit_pipeline_mode()
    except BaseException:
        # Cut off mid-exchange (cancelled, or the server gone): what the connection holds is unknown. Closed, the
        # pool replaces it.
        _prepared.pop(conn, None)
        pg.finish()
        raise
    rows = []
    for result, want in zip(results, wanted, strict=True):
        if result.status == FATAL_ERROR:
            _prepared.pop(conn, None)
            raise psycopg.errors.error_from_result(result, encoding=conn.info.encoding)
        if want:
            tx.set_pgresult(result)
            rows.append(tx.load_rows(0, result.ntuples, tuple))
    prepared.update(new)
    return rows


async def _exchange(pg) -> list:
    """Flush what `run` queued and collect one result per statement, up to the pipeline's sync."""
    loop = asyncio.get_running_loop()
    fd = pg.socket
    while pg.flush():
        await _ready(loop.add_writer, loop.remove_writer, fd)
    results = []
    while True:
        while pg.is_busy():
            await _ready(loop.add_reader, loop.remove_reader, fd)
            pg.consume_input()
        result = pg.get_result()
        if result is None:
            continue  # the end of one statement's results
        if result.status == PIPELINE_SYNC:
            return results
        results.append(result)


async def _ready(add, remove, fd: int) -> None:
    ready = asyncio.get_running_loop().create_future()
    add(fd, lambda: ready.done() or ready.set_result(None))
    try:
        await ready
    finally:
        remove(fd)


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
