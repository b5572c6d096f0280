"""The SMTP group commit's insert, on the server's event loop: a batch of messages stored by one pipelined round trip
on an async psycopg connection (BEGIN, one prepared INSERT ... RETURNING per message, COMMIT), then its jobs sent.

Why this one statement bypasses Django's ORM and transactions: Django's database layer is sync only, so from the
loop it runs on a thread (sync_to_async). The SMTP 250 waits for this commit, and the thread hand-offs cost more than
the insert: ~0.9 ms to the writer thread, ~2 ms back to the loop, and the insert itself, competing with the loop for
the GIL, ~8.5 ms instead of ~1 ms idle (bench/smtp.py). So `serve` keeps a small psycopg AsyncConnectionPool of its
own, opened lazily on its loop with the parameters Django connects with (DATABASES), and the batch never leaves the
loop. The 250 still follows a real, synchronous COMMIT (the pipeline's COMMIT reply is awaited). What stays as it was:
  - the statement and each row's fields are services' (INSERT_RECEIVED, _fields, insert_received_params), shared
    with the sync path, so a row stored here is the row the ORM would store (tests/mail/test_receive.py);
  - a batch that hits the unique constraint (a repeat) is rolled back and stored message by message by the sync
    path (services.inbound_emails_receive_each, on a thread): duplicates are recorded exactly as before;
  - errors are Django's (`django.db.DatabaseError` and subclasses, mapped from psycopg's as Django maps them), so
    the SMTP handler answers 451 on either path;
  - the `mail.process` jobs are sent after the commit, in the background (apps.core.jobs.enqueue_many_committed);
    the outbox sweep processes what they miss.
Only for PostgreSQL with Redis (the production set-up). SQLite (the embedded default) and the in-process job
backend keep the sync path (services.inbound_emails_receive on a thread).
"""

import asyncio
import contextlib
import logging
import select

import psycopg
from django import db as django_db
from django.conf import settings
from django.db import connections
from psycopg_pool import AsyncConnectionPool

from apps.core import jobs
from apps.core.concurrency import run_sync
from apps.mail import services

log = logging.getLogger(__name__)

APPLICATION_NAME = "parkgate-smtp-receipts"  # pg_stat_activity's name for these connections (unless set in OPTIONS)


def on_the_loop() -> bool:
    """Whether receipts are stored on the event loop (PostgreSQL and Redis) or by the sync path on a thread."""
    return connections["default"].vendor == "postgresql" and settings.PARKGATE_JOBS_BACKEND == "arq"


async def inbound_emails_receive_async(*, items: list[dict]) -> list[int]:
    """services.inbound_emails_receive for the SMTP server's loop: the messages (dicts of inbound_email_receive's
    arguments) committed, their jobs sent after the commit; their ids in order. DatabaseError when not stored."""
    if not on_the_loop():
        return await run_sync(services.inbound_emails_receive, items=items)
    return await _writer().receive(items)


async def close() -> None:
    """Close this process's receipt pool (serve's shutdown), if it was opened on the running loop."""
    global _default
    writer, _default = _default, None
    if writer is not None and writer.loop is asyncio.get_running_loop():
        await writer.close()


def django_error(exc: psycopg.Error) -> django_db.Error:
    """The Django exception for a psycopg one, as Django's DatabaseErrorWrapper maps them (same order)."""
    for django_type in (
        django_db.DataError,
        django_db.OperationalError,
        django_db.IntegrityError,
        django_db.InternalError,
        django_db.ProgrammingError,
        django_db.NotSupportedError,
        django_db.DatabaseError,
        django_db.InterfaceError,
    ):
        if isinstance(exc, getattr(psycopg, django_type.__name__)):
            break
    else:
        django_type = django_db.Error
    error = django_type(*exc.args)
    error.__cause__ = exc
    return error


def connect_kwargs() -> dict:
    """psycopg.connect's arguments for the default database, as Django builds them (name, host, user, password,
    port, OPTIONS such as connect_timeout and the server `options`), without what only Django's sync connections
    use (cursor class, adapters, its disabled prepared statements)."""
    params = connections["default"].get_connection_params()
    for key in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(key, None)
    params.setdefault("application_name", APPLICATION_NAME)
    return params


class ReceiptWriter:
    """A small connection pool on the running loop, and the batch insert on it."""

    def __init__(self, *, min_size: int = 2, max_size: int = 4, timeout: float = 5.0, **kwargs):
        self.loop = asyncio.get_running_loop()
        # autocommit: the pipeline sends its own BEGIN and COMMIT, so a batch is one round trip (psycopg's implicit
        # BEGIN would wait for its own reply first).
        self.pool = AsyncConnectionPool(
            kwargs=kwargs | {"autocommit": True},
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            open=False,
            name="smtp-receipts",
        )
        self.opened = False

    async def receive(self, items: list[dict]) -> list[int]:
        rows = [services._fields(**item) for item in items]
        try:
            ids = await self._insert(services.insert_received_params(rows))
        except psycopg.IntegrityError:
            # A repeat of an earlier message (or of another in the batch): rolled back; each stored on its own.
            return await run_sync(services.inbound_emails_receive_each, rows=rows)
        except psycopg.Error as exc:
            raise django_error(exc) from exc
        try:
            jobs.enqueue_many_committed("mail.process", [{"message_id": email_id} for email_id in ids])
        except Exception:  # committed: the messages stay `received` and the sweep processes them
            log.exception("mail.process jobs for %s not sent; the sweep will process them", ids)
        return ids

    async def _insert(self, params: list[tuple]) -> list[int]:
        conn = await self._connection()
        try:
            cursors = []
            try:
                async with conn.pipeline():
                    await conn.execute("BEGIN", prepare=False)
                    for row in params:
                        cursor = conn.cursor()
                        await cursor.execute(services.INSERT_RECEIVED, row, prepare=True)
                        cursors.append(cursor)
                    await conn.execute("COMMIT", prepare=False)
            except psycopg.Error:
                if not conn.broken:
                    with contextlib.suppress(psycopg.Error):
                        await conn.rollback()
                raise
            return [(await cursor.fetchone())[0] for cursor in cursors]
        finally:
            await self.pool.putconn(conn)  # a broken connection is discarded and replaced by the pool

    async def _connection(self) -> psycopg.AsyncConnection:
        """A pooled connection known to be alive. PostgreSQL restarting (or terminating a backend) leaves an idle
        connection's socket readable (its goodbye, or EOF): only such a connection costs a check round trip, and a
        dead one is handed back (the pool replaces it) for the next, without the pool's check back-off."""
        if not self.opened:
            await self.pool.open()  # safe to call again; concurrent first callers both wait for it
            self.opened = True
        for _ in range(self.pool.max_size):
            conn = await self.pool.getconn()
            if not _readable(conn):
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


def _readable(conn: psycopg.AsyncConnection) -> bool:
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN)
    return bool(poller.poll(0))


_default: ReceiptWriter | None = None


def _writer() -> ReceiptWriter:
    """The process's writer on the running loop (a test's new loop gets a new one)."""
    global _default
    if _default is None or _default.loop is not asyncio.get_running_loop():
        pool = connections["default"].settings_dict["OPTIONS"].get("pool")
        timeout = pool.get("timeout", 5.0) if isinstance(pool, dict) else 5.0  # DB_POOL_TIMEOUT, as Django's pool
        _default = ReceiptWriter(timeout=timeout, **connect_kwargs())
    return _default
