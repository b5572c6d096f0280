"""Hand-written SQL on hot paths: a transaction's statements sent to PostgreSQL as ONE pipeline of prepared statements
(`run` on a thread's connection, Django's included; `run_async` on the loop's, apps.core.aiodb).

Why not Django's cursors, nor psycopg's own pipeline mode: Django binds parameters on the client and never prepares,
so every statement is parsed and planned again, which for the hot paths' few statements costs more than running
them; psycopg's pipeline mode polls the socket and flushes once per statement, each a release and retake of the GIL
that the server's loop and the other threads contend for, and its cursors' per-statement work is several times what
the statements need here.

How (`run`, `run_async`): psycopg's PGconn in pipeline mode: a Parse per statement the first time a connection sees
it, then Bind/Execute per statement with its parameters as text values (typed by their context, as for any prepared
statement: write `INSERT ... VALUES (%s, ...)` rather than `SELECT %s`, and cast where PostgreSQL could not infer a
type, `%s::text[]`), one Sync, one flush, then every result: one round trip, one wait. A connection not in
autocommit (Django's in an atomic block) gets its BEGIN first when no transaction is open, as psycopg would send it.
Errors are psycopg's: the first statement's that failed (PostgreSQL skips what follows it); callers map them.
"""

import functools
import hashlib
import re
import weakref
from collections.abc import Mapping, Sequence

import psycopg
from django.db import connection
from psycopg.adapt import PyFormat, Transformer
from psycopg.pq import ExecStatus, TransactionStatus
from psycopg.waiting import Ready, Wait, wait, wait_async

FATAL_ERROR, PIPELINE_SYNC, COMMAND_OK = ExecStatus.FATAL_ERROR, ExecStatus.PIPELINE_SYNC, ExecStatus.COMMAND_OK
# How long a wait for the server blocks before looking again (psycopg's own connections': its waits' default, 0, polls
# without blocking, a busy loop holding the GIL).
WAIT_S = 0.1


class Statement:
    """A statement run by name: `sql` with %s or %(name)s placeholders (as for a cursor), prepared on a connection
    the first time `run` sends it there."""

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


Item = str | tuple[Statement, Sequence]  # a command (BEGIN, COMMIT) or a Statement with its parameters

# The statements each connection has prepared, known from the results of their Parse messages.
_prepared: "weakref.WeakKeyDictionary[psycopg.BaseConnection, set[bytes]]" = weakref.WeakKeyDictionary()


def run(conn: psycopg.Connection, *items: Item) -> list[list[tuple]]:
    """Send `items` in one pipeline and wait (GIL released) for all of their results. Returns the rows of each
    Statement, in order."""
    exchange = _Exchange(conn, items)
    try:
        results = wait(exchange.results(), conn.pgconn.socket, interval=WAIT_S)
    except BaseException:
        exchange.abandon()
        raise
    return exchange.rows(results)


async def run_async(conn: psycopg.AsyncConnection, *items: Item) -> list[list[tuple]]:
    """`run` on the loop's connections."""
    exchange = _Exchange(conn, items)
    try:
        results = await wait_async(exchange.results(), conn.pgconn.socket, interval=WAIT_S)
    except BaseException:
        exchange.abandon()
        raise
    return exchange.rows(results)


class _Exchange:
    """One pipeline: queued at once (no I/O), then `results` (a psycopg generator: flush, read up to the Sync)."""

    def __init__(self, conn: psycopg.BaseConnection, items: Sequence[Item]):
        self.conn, self.pg = conn, conn.pgconn
        self.prepared = _prepared.setdefault(conn, set())
        self.tx = Transformer(conn)
        self.expected: list[bytes | bool] = []  # per result: the name a Parse prepares, or whether rows are wanted
        pg, parsing = self.pg, set()
        pg.enter_pipeline_mode()
        try:
            if not conn.autocommit and pg.transaction_status == TransactionStatus.IDLE:
                pg.send_query_params(b"BEGIN", None)
                self.expected.append(False)
            for item in items:
                if isinstance(item, str):
                    pg.send_query_params(item.encode(), None)
                    self.expected.append(False)
                    continue
                stmt, params = item
                if stmt.name not in self.prepared and stmt.name not in parsing:
                    pg.send_prepare(stmt.name, stmt.text)
                    self.expected.append(stmt.name)
                    parsing.add(stmt.name)
                pg.send_query_prepared(stmt.name, self.tx.dump_sequence(params, stmt.formats) if params else None)
                self.expected.append(True)
            pg.pipeline_sync()
        except BaseException:
            self.abandon()
            raise

    def results(self):
        pg = self.pg
        while pg.flush():
            if (yield Wait.RW) & Ready.R:
                pg.consume_input()
        results = []
        while True:
            while pg.is_busy():
                if (yield Wait.R) & Ready.R:
                    pg.consume_input()
            result = pg.get_result()
            if result is None:
                continue  # the end of one statement's results
            if result.status == PIPELINE_SYNC:
                pg.exit_pipeline_mode()
                return results
            results.append(result)

    def abandon(self) -> None:
        """Cut off mid-exchange (cancelled, interrupted, the server gone): what the connection holds is unknown, so
        it is closed (a pool replaces it)."""
        _prepared.pop(self.conn, None)
        self.pg.finish()

    def rows(self, results: list) -> list[list[tuple]]:
        rows, error = [], None
        for result, expected in zip(results, self.expected, strict=True):
            if error is None and result.status == FATAL_ERROR:
                error = psycopg.errors.error_from_result(result, encoding=self.conn.info.encoding)
            elif isinstance(expected, bytes):
                if result.status == COMMAND_OK:
                    self.prepared.add(expected)
            elif expected and error is None:
                self.tx.set_pgresult(result)
                rows.append(self.tx.load_rows(0, result.ntuples, tuple))
        if error is not None:
            raise error
        return rows


def run_django(*items: Item) -> list[list[tuple]]:
    """`run` on this thread's Django connection, in its transaction (an atomic block's BEGIN comes first, COMMIT is
    the caller's item or the block's); errors are Django's (`django.db.DatabaseError` and subclasses)."""
    connection.ensure_connection()
    with connection.wrap_database_errors:
        return run(connection.connection, *items)
