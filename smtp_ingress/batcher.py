"""Group commit for the SMTP 250: messages whose DATA ends at about the same time are stored in one transaction.

Each message still gets its 250 only after the commit that holds it. With few messages in flight every message is
written at once, alone (a batch of one); messages that arrive while a write is in flight wait for it to finish and
go together in the next, so a burst costs a few commits instead of one per message.

One writer: a second one in flight halves the batches, and each batch's round trip and job send cost the server more
CPU than the messages in it (docs/performance.md).

With PostgreSQL and Redis a batch is stored on this loop (apps.mail.receipts: one round trip, no thread hand-off),
otherwise on a thread.
"""

import asyncio
import logging

from apps.core import metrics
from apps.mail import receipts

log = logging.getLogger(__name__)


class ReceiptBatcher:
    def __init__(self, *, max_batch: int = 64):
        self.max_batch = max_batch
        self.pending: list[tuple[dict, asyncio.Future]] = []
        self.writing = False
        self.tasks: set[asyncio.Task] = set()

    async def store(self, item: dict) -> int:
        """Store one message (receipts.inbound_emails_receive_async's item); returns its id once committed."""
        loop = asyncio.get_running_loop()
        future, received = loop.create_future(), loop.time()
        self.pending.append((item, future))
        if not self.writing:
            self.writing = True
            task = asyncio.ensure_future(self._write())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        # shield: a client that disconnects must not cancel the write others share; its message is kept either way
        stored_id = await asyncio.shield(future)
        metrics.email_receipt_seconds.observe(loop.time() - received)
        return stored_id

    async def _write(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending[: self.max_batch], self.pending[self.max_batch :]
                try:
                    ids = await receipts.inbound_emails_receive_async(items=[item for item, _ in batch])
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), stored_id in zip(batch, ids, strict=True):
                    if not future.done():
                        future.set_result(stored_id)
        finally:
            self.writing = False
