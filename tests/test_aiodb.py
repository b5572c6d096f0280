"""apps.core.sql.run_async on the loop's pool (apps.core.aiodb), sending a transaction to PostgreSQL as one pipeline:
values reach the server as the sync paths' would and come back typed; an error stops the rest and leaves the
connection usable (the statements it prepared known); a run cut off half-way (cancelled) closes its connection, and
the pool hands out a working one."""

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest
from psycopg.types.json import Jsonb

from apps.core import aiodb, sql

pytestmark = pytest.mark.django_db(transaction=True)

ECHO = sql.statement(
    "SELECT %(text)s::text, %(none)s::int, %(when)s::timestamptz, %(plates)s::text[], %(flag)s::bool, "
    "%(score)s::float8, %(price)s::numeric, %(doc)s::jsonb, %(text)s::text = %(same)s, '100%%'"
)
TABLE = "CREATE TEMPORARY TABLE IF NOT EXISTS aiodb_t (id int PRIMARY KEY, note text)"
INSERT = sql.statement("INSERT INTO aiodb_t (id, note) VALUES (%s, %s) RETURNING id, note")
COUNT = sql.statement("SELECT count(*) FROM aiodb_t")


def on_one_connection(body):
    async def main():
        pool = aiodb.LoopPool(name="test-aiodb", min_size=1, max_size=1)
        try:
            return await body(pool)
        finally:
            await pool.close()

    return asyncio.run(main())


def test_values_go_as_the_sync_paths_would_and_come_back_typed():
    when = datetime(2026, 12, 6, 19, 30, 5, 123456, tzinfo=UTC)
    params = {
        "text": "O'Brien; DROP TABLE x --\\", "none": None, "when": when, "plates": ["AB12 CDE", "it's", None],
        "flag": False, "score": 0.875, "price": Decimal("12.50"), "doc": Jsonb({"k": "v'\""}), "same": "other",
    }  # fmt: skip

    async def body(pool):
        async with pool.connection() as conn:
            first = await sql.run_async(conn, ECHO(params), ECHO(params | {"same": params["text"]}))
            again = await sql.run_async(conn, ECHO(params))  # prepared on this connection already
            return first, again, conn.info.transaction_status

    (one, two), (three,), status = on_one_connection(body)
    assert one == [(params["text"], None, when, ["AB12 CDE", "it's", None], False, 0.875, Decimal("12.50"),
                    {"k": "v'\""}, False, "100%")]  # fmt: skip
    assert two[0][8] is True and three == one
    assert status == psycopg.pq.TransactionStatus.IDLE  # autocommit: nothing left open


def test_an_error_skips_what_follows_and_the_connection_goes_on():
    async def body(pool):
        async with pool.connection() as conn:
            await sql.run_async(conn, TABLE)
            with pytest.raises(psycopg.errors.UniqueViolation):
                await sql.run_async(conn, "BEGIN", INSERT([1, "a"]), INSERT([1, "again"]), INSERT([2, "b"]), "COMMIT")
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
            await conn.rollback()
            after = await sql.run_async(conn, "BEGIN", INSERT([3, "c"]), COUNT([]), "COMMIT")
            return after, conn.info.transaction_status

    (inserted, counted), status = on_one_connection(body)
    assert inserted == [(3, "c")] and counted == [(1,)]  # nothing of the failed transaction; its statements re-made
    assert status == psycopg.pq.TransactionStatus.IDLE


def test_a_run_cancelled_half_way_closes_its_connection_and_the_pool_replaces_it():
    async def body(pool):
        async with pool.connection() as conn:
            first_pid = conn.info.backend_pid
        task = asyncio.create_task(_sleep_on(pool))
        await asyncio.sleep(0.3)  # the pipeline is sent; its reply is seconds away
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with pool.connection() as conn:
            rows = await sql.run_async(conn, sql.statement("SELECT pg_backend_pid()")([]))
        return first_pid, rows[0][0][0]

    first_pid, next_pid = on_one_connection(body)
    assert next_pid != first_pid  # a new backend: the cut-off one was not handed out again


async def _sleep_on(pool):
    async with pool.connection() as conn:
        await sql.run_async(conn, "BEGIN", sql.statement("SELECT pg_sleep(%s)")([5]), "COMMIT")
