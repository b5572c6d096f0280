"""Hand-written SQL on hot paths, as prepared statements with server-side parameters (PostgreSQL only).

Django's psycopg backend binds parameters on the client and never prepares (`prepare_threshold=None`), so every
query is parsed and planned again: for the plate-read decision's few statements that costs more than running them.
`prepared_cursor()` lends a plain psycopg cursor on the same connection (same transaction) whose statements are
prepared the first time each pooled connection runs them, and reused from then on. Parameters are sent apart from
the text, so their types come from the context: write `INSERT ... VALUES (%s, ...)` (typed by the target columns)
rather than `INSERT ... SELECT %s`, and cast where PostgreSQL could not infer one (`%s::text[]`).

Errors are Django's (`django.db.DatabaseError` and subclasses), as from `connection.cursor()`.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import connection


@contextmanager
def prepared_statements() -> Iterator[psycopg.Connection]:
    """The current connection's psycopg connection, whose server-binding cursors (`psycopg.Cursor(conn)`) prepare
    the statements executed with `prepare=True`, and whose errors are Django's, while this lasts."""
    connection.ensure_connection()
    raw = connection.connection
    with connection.wrap_database_errors:
        # Prepared statements stay off for Django's own (client-bound) queries; on only while this lasts.
        previous, raw.prepare_threshold = raw.prepare_threshold, 0
        try:
            yield raw
        finally:
            raw.prepare_threshold = previous


@contextmanager
def prepared_cursor() -> Iterator[psycopg.Cursor]:
    """A server-binding cursor on the current connection; pass `prepare=True` to `execute` for statements run often."""
    with prepared_statements() as raw, psycopg.Cursor(raw) as cursor:
        yield cursor
