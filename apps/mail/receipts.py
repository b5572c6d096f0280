"""The SMTP group commit's insert, on the server's event loop: a batch of messages stored by one round trip on an
async psycopg connection (one pipeline: BEGIN, a prepared INSERT ... RETURNING per message, COMMIT; aiodb.run), then
its jobs sent.

Why this one statement bypasses Django's ORM and transactions (apps.core.aiodb says it in general): the SMTP 250 waits
for this commit, and the thread hand-offs (and the thread's GIL contention with the loop) cost more than the insert
(docs/performance.md).
The 250 still follows a real, synchronous COMMIT (its reply is awaited). What stays as it was:
  - the statement and each row's fields are services' (INSERT_RECEIVED, _fields, insert_received_params), shared
    with the sync path, so a row stored here is the row the ORM would store (tests/mail/test_receive.py);
  - a batch that hits the unique constraint (a repeat) is rolled back and stored message by message by the sync
    path (services.inbound_emails_receive_each, on a thread): duplicates are recorded exactly as before;
  - errors are Django's, so the SMTP handler answers 451 on either path;
  - the `mail.process` jobs are sent after the commit, in the background (apps.core.jobs.enqueue_many_committed);
    the outbox sweep processes what they miss.
Only with Redis (the production set-up): the in-process job backend keeps the sync path
(services.inbound_emails_receive on a thread).
"""

import logging

import psycopg
from django.conf import settings

from apps.core import aiodb, jobs
from apps.core.concurrency import run_sync
from apps.mail import services

log = logging.getLogger(__name__)

POOL_NAME = "smtp-receipts"
APPLICATION_NAME = f"parkgate-{POOL_NAME}"  # pg_stat_activity's name for these connections (unless set in OPTIONS)


def on_the_loop() -> bool:
    """Whether receipts are stored on the event loop (with Redis) or by the sync path on a thread."""
    return settings.PARKGATE_JOBS_BACKEND == "arq"


async def inbound_emails_receive_async(*, items: list[dict]) -> list[int]:
    """services.inbound_emails_receive for the SMTP server's loop: the messages (dicts of inbound_email_receive's
    arguments) committed, their jobs sent after the commit; their ids in order. DatabaseError when not stored."""
    if not on_the_loop():
        return await run_sync(services.inbound_emails_receive, items=items)
    return await ReceiptWriter(_pools.get()).receive(items)


async def close() -> None:
    """Close this process's receipt pool (serve's shutdown), if it was opened on the running loop."""
    await _pools.close()


class ReceiptWriter:
    """The batch insert on a pool of the loop's connections."""

    def __init__(self, pool: aiodb.LoopPool):
        self.pool = pool

    async def receive(self, items: list[dict]) -> list[int]:
        rows = [services._fields(**item) for item in items]
        try:
            ids = await self._insert(services.insert_received_params(rows))
        except psycopg.IntegrityError:
            # A repeat of an earlier message (or of another in the batch): rolled back; each stored on its own.
            return await run_sync(services.inbound_emails_receive_each, rows=rows)
        except psycopg.Error as exc:
            raise aiodb.django_error(exc) from exc
        try:
            jobs.enqueue_many_committed("mail.process", [{"message_id": email_id} for email_id in ids])
        except Exception:  # committed: the messages stay `received` and the sweep processes them
            log.exception("mail.process jobs for %s not sent; the sweep will process them", ids)
        return ids

    async def _insert(self, params: list[tuple]) -> list[int]:
        insert = aiodb.statement(services.INSERT_RECEIVED)
        async with self.pool.connection() as conn:
            results = await aiodb.run(conn, "BEGIN", *(insert(row) for row in params), "COMMIT")
        return [rows[0][0] for rows in results]


_pools = aiodb.PerLoop(POOL_NAME, min_size=2, max_size=4)
