"""The SMTP group commit's insert, on the server's event loop: a batch of messages stored by one round trip on an
async psycopg connection (one pipeline: BEGIN, a prepared INSERT ... RETURNING per message, COMMIT;
apps.core.sql.run_async), then its jobs sent.

Why this one statement bypasses Django's ORM and transactions (apps.core.aiodb says it in general): the SMTP 250 waits
for this commit, and the thread hand-offs (and the thread's GIL contention with the loop) cost more than the insert
(docs/performance.md).
The 250 still follows a real, synchronous COMMIT (its reply is awaited), with or without Redis:
  - the statement and each row's fields are services' (INSERT_RECEIVED, _fields, insert_received_params), so a
    row stored here is the row services.inbound_emails_receive stores on a thread (tests/mail/test_receive.py);
  - a repeat of an earlier message is stored by that statement as a `duplicate` of it, in the same round trip;
  - errors are Django's, so the SMTP handler answers 451;
  - the `mail.process` jobs of the originals are sent after the commit (apps.core.jobs.enqueue_many_committed: to
    Redis, or to the in-process worker); the outbox sweep processes what they miss.
"""

import logging

import psycopg

from apps.core import aiodb, jobs, sql
from apps.mail import services

log = logging.getLogger(__name__)

POOL_NAME = "smtp-receipts"
APPLICATION_NAME = f"parkgate-{POOL_NAME}"  # pg_stat_activity's name for these connections (unless set in OPTIONS)


async def inbound_emails_receive_async(*, items: list[dict]) -> list[int]:
    """services.inbound_emails_receive for the SMTP server's loop: the messages (dicts of inbound_email_receive's
    arguments) committed, their jobs sent after the commit; their ids in order. DatabaseError when not stored."""
    return await ReceiptWriter(_pools.get()).receive(items)


async def close() -> None:
    """Close this process's receipt pool (serve's shutdown), if it was opened on the running loop."""
    await _pools.close()


class ReceiptWriter:
    """The batch insert on a pool of the loop's connections."""

    def __init__(self, pool: aiodb.LoopPool):
        self.pool = pool

    async def receive(self, items: list[dict]) -> list[int]:
        params = services.insert_received_params(services.received_rows(items))
        insert = sql.statement(services.INSERT_RECEIVED)
        try:
            async with self.pool.connection() as conn:
                results = await sql.run_async(conn, "BEGIN", *(insert(row) for row in params), "COMMIT")
        except psycopg.Error as exc:
            raise aiodb.django_error(exc) from exc
        stored = [rows[0] for rows in results]
        originals = [{"message_id": email_id} for email_id, duplicate in stored if not duplicate]
        try:
            jobs.enqueue_many_committed("mail.process", originals)
        except Exception:  # committed: the messages stay `received` and the sweep processes them
            log.exception("mail.process jobs for %s not sent; the sweep will process them", originals)
        return [email_id for email_id, _ in stored]


_pools = aiodb.PerLoop(POOL_NAME, min_size=2, max_size=4)
