"""Inbound booking emails: durable receipt (before the SMTP 250), then parsing and applying in a job.

The database is the outbox: a stored message stays `received` until a job has applied it. The job queue is only a
nudge (enqueued after commit); `inbound_email_sweep` (periodic) processes whatever the queue lost (Redis down, a
process killed between commit and enqueue). Processing is idempotent: the message row is locked and only a
`received` message is applied, so a job run twice applies nothing twice.
"""

import hashlib
import logging
import time
from datetime import UTC, timedelta
from email import message_from_bytes, policy
from email.header import decode_header, make_header

from django.conf import settings
from django.db import DatabaseError, DataError, IntegrityError, transaction
from django.utils import timezone
from psycopg.types.json import Jsonb

from apps.core import sql
from apps.core.jobs import enqueue, enqueue_many
from apps.mail.applying import APPLIED, apply_actions
from apps.mail.models import InboundEmail
from apps.mail.parsers import ParseFailure, parse_message

log = logging.getLogger(__name__)

Status = InboundEmail.Status
SWEEP_AFTER = timedelta(seconds=10)  # a message `received` for longer than this was missed by the queue
SWEEP_BATCH = 200
SWEEP_BUDGET_S = 5.0
REPROCESSABLE = {Status.FAILED, Status.PROCESSED, Status.RECEIVED}
# A Date header more than this after the time of receipt is a broken clock or a forgery, not an order: one in year
# 9999 would put every later message for its bookings behind it for good. Such a message counts as having no Date
# (ordered by its time of receipt). An old Date needs no bound: that message only loses to newer ones (the rule).
DATE_AFTER_RECEIPT = timedelta(days=1)


def header_block(raw: bytes) -> bytes:
    ends = [at for at in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if at != -1]
    return raw[: min(ends)] if ends else raw


def body_hash(raw: bytes) -> str:
    """SHA-256 of the bytes after the header block, so that relays' added Received: lines do not matter."""
    ends = [(at, len(sep)) for sep in (b"\r\n\r\n", b"\n\n") if (at := raw.find(sep)) != -1]
    if not ends:
        return hashlib.sha256(b"").hexdigest()
    at, length = min(ends)
    return hashlib.sha256(raw[at + length :]).hexdigest()


def _header(headers, name: str) -> str:
    """A header's text for staff (RFC 2047 encoded words decoded), on one line; "" when absent or unreadable."""
    try:
        value = str(headers.get(name, "") or "")
        if "=?" in value:
            value = str(make_header(decode_header(value)))
    except Exception:
        value = str(headers.get(name, "") or "") if name in headers else ""
    return " ".join(value.replace("\x00", "").split())[:998]


def no_nul(value):
    """PostgreSQL text and jsonb cannot hold NUL characters; mail can. Strings (also inside lists and dicts)
    lose them."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [no_nul(v) for v in value]
    if isinstance(value, dict):
        return {k: no_nul(v) for k, v in value.items()}
    return value


def _fields(*, agent_id: int, raw: bytes, mail_from: str, rcpt_tos: list[str], peer: str) -> dict:
    """The stored row's fields; only the header block is read (Message-ID, Subject)."""
    headers = message_from_bytes(header_block(raw), policy=policy.compat32)
    return {
        "agent_id": agent_id,
        "raw": raw,
        "size": len(raw),
        "mail_from": no_nul(mail_from)[:320],
        "rcpt_tos": [no_nul(address) for address in rcpt_tos],
        "peer": no_nul(peer)[:64],
        "message_id": _header(headers, "Message-ID"),
        "body_hash": body_hash(raw),
        "subject": _header(headers, "Subject"),
    }


def inbound_email_receive(*, agent_id: int, raw: bytes, mail_from: str, rcpt_tos: list[str], peer: str) -> int:
    """Store a message exactly as received and schedule its processing. Returns the stored id.

    Committed before returning (the SMTP 250 follows). Only the header block is read here; the body is parsed
    later, in the job. A repeat of an earlier message (same Message-ID and body hash) is stored as `duplicate`.
    """
    item = {"agent_id": agent_id, "raw": raw, "mail_from": mail_from, "rcpt_tos": rcpt_tos, "peer": peer}
    return inbound_emails_receive(items=[item])[0]


def inbound_emails_receive(*, items: list[dict]) -> list[int]:
    """Store several messages (each a dict of inbound_email_receive's arguments) in one transaction, one commit,
    and enqueue a job for each original after it. Returns their ids, in order.

    The SMTP server stores its messages on its own loop with the same statement (apps.mail.receipts); this is the
    same receipt for callers on a thread (commands, tests).
    """
    rows = received_rows(items)
    with transaction.atomic():
        insert = sql.statement(INSERT_RECEIVED)
        stored = [found[0] for found in sql.run_django(*(insert(params) for params in insert_received_params(rows)))]
        enqueue_many("mail.process", [{"message_id": email_id} for email_id, duplicate in stored if not duplicate])
    return [email_id for email_id, _ in stored]


def received_rows(items: list[dict]) -> list[dict]:
    return [_fields(**item) for item in items]


# The SMTP 250 waits for this insert, so it is hand-written (apps.core.sql): one statement prepared once per
# connection, its rows sent in one pipeline with server-side (binary) parameters: Django's bulk_create compiles the
# statement for every batch and quotes each body into the SQL text (docs/performance.md). Every column without a
# database default is listed; status, result and error get the model's defaults (tests/mail/test_receive.py
# compares a row stored here with one the ORM creates).
# A repeat of an earlier message (the same agent, Message-ID and body hash: the partial unique index
# inboundemail_one_original) is stored by the same statement as a `duplicate` linked to its original, so a batch
# never fails for one repeat. Returns (id, whether it is a duplicate).
INSERT_RECEIVED = """
    WITH message (received_at, agent_id, raw, size, mail_from, rcpt_tos, peer, message_id, body_hash, subject) AS (
        VALUES (%s::timestamptz, %s::bigint, %s::bytea, %s::integer, %s::varchar, %s::jsonb, %s::varchar,
                %s::varchar, %s::varchar, %s::varchar)
    ), original AS (
        INSERT INTO mail_inboundemail
            (received_at, agent_id, raw, size, mail_from, rcpt_tos, peer, message_id, body_hash, subject,
             status, result, error)
        SELECT *, 'received', '[]', '' FROM message
        ON CONFLICT (agent_id, message_id, body_hash) WHERE duplicate_of_id IS NULL AND status <> 'duplicate'
        DO NOTHING
        RETURNING id
    ), repeat AS (
        INSERT INTO mail_inboundemail
            (received_at, agent_id, raw, size, mail_from, rcpt_tos, peer, message_id, body_hash, subject,
             status, result, error, duplicate_of_id)
        SELECT m.*, 'duplicate', '[]', '', (
            SELECT e.id FROM mail_inboundemail e
            WHERE e.agent_id = m.agent_id AND e.message_id = m.message_id AND e.body_hash = m.body_hash
              AND e.duplicate_of_id IS NULL AND e.status <> 'duplicate'
            ORDER BY e.id LIMIT 1
        )
        FROM message m WHERE NOT EXISTS (SELECT FROM original)
        RETURNING id
    )
    SELECT id, false FROM original UNION ALL SELECT id, true FROM repeat
"""


def insert_received_params(rows: list[dict]) -> list[tuple]:
    """INSERT_RECEIVED's parameters for each row (`_fields`), all received now."""
    now = timezone.now()
    return [
        (
            now,
            f["agent_id"],
            f["raw"],
            f["size"],
            f["mail_from"],
            Jsonb(f["rcpt_tos"]),
            f["peer"],
            f["message_id"],
            f["body_hash"],
            f["subject"],
        )
        for f in rows
    ]


def inbound_email_process(*, message_id: int) -> str | None:
    """Parse and apply one stored message if it is still `received`. Returns its new status (None: nothing done)."""
    with transaction.atomic():
        email = (
            InboundEmail.objects.select_for_update(of=("self",), skip_locked=False)
            .select_related("agent")
            .filter(pk=message_id)
            .first()
        )
        if email is None or email.status != Status.RECEIVED:
            return None
        _process_locked(email)
        email.result, email.error = no_nul(email.result), no_nul(email.error)
        email.processed_at = timezone.now()
        email.save(update_fields=["status", "error", "result", "sent_at", "processed_at"])
        if email.agent.error_report_address and (email.status == Status.FAILED or email.failed_rows):
            enqueue("mail.error_report", message_id=email.id)
    return email.status


def plausible_sent_at(sent_at, received_at):
    """The Date header in UTC, or None when there is none or it lies too far after the time of receipt."""
    if sent_at is None or sent_at > received_at + DATE_AFTER_RECEIPT:
        return None
    return sent_at.astimezone(UTC)


def _process_locked(email: InboundEmail) -> None:
    """Set status, result, error and sent_at. A message that breaks the parser fails alone (never blocks others)."""
    if email.raw is None:
        email.status, email.error = Status.FAILED, "the raw message was deleted (retention period)"
        return
    try:
        with transaction.atomic():
            parsed = parse_message(fmt=email.agent.email_format, raw=bytes(email.raw))
            email.sent_at = plausible_sent_at(parsed.sent_at, email.received_at)
            if not parsed.actions:
                email.status, email.result, email.error = Status.IGNORED, [], "no bookings in this message"
                return
            email.result = apply_actions(
                email=email, sent_at=email.sent_at or email.received_at, actions=parsed.actions
            )
    except ParseFailure as exc:
        email.status, email.error, email.result = Status.FAILED, str(exc), []
        return
    except (DataError, IntegrityError) as exc:  # this message's data, not the database's health: it fails alone
        log.warning("message %s failed on its data: %s", email.id, exc)
        email.status, email.error, email.result = Status.FAILED, f"unstorable data: {exc}"[:2000], []
        return
    except DatabaseError:
        raise  # the database is unwell: let the job fail and run again later
    except Exception as exc:  # a bug or an input nobody foresaw: this message fails, the others go on
        log.exception("message %s could not be processed", email.id)
        email.status, email.error, email.result = Status.FAILED, f"internal error: {exc!r}"[:2000], []
        return
    email.status, email.error = _overall(email.result)


def _overall(results: list[dict]) -> tuple[str, str]:
    outcomes = [r["result"] for r in results]
    failed = [r for r in results if r["result"] == "failed"]
    if any(o in APPLIED for o in outcomes):
        return Status.PROCESSED, ""
    if failed:
        reasons = [f"{_where(r)}{r['error']}" for r in failed]
        return Status.FAILED, "; ".join(reasons)[:2000]
    return Status.SUPERSEDED, ""


def _where(row: dict) -> str:
    if "line" in row:
        return f"line {row['line']} ({row.get('agent_ref') or '?'}): "
    return f"{row['agent_ref']}: " if row.get("agent_ref") else ""


def inbound_email_reprocess(*, message_id: int) -> str | None:
    """Staff: run a failed message again after fixing data (a car park code, a contract).

    For a processed message with failed rows, only those rows run again (the others were applied already).
    Returns the new status, or None when the message cannot be reprocessed (duplicate, ignored, superseded).
    """
    with transaction.atomic():
        email = InboundEmail.objects.select_for_update(of=("self",)).select_related("agent").get(pk=message_id)
        if email.status not in REPROCESSABLE:
            return None
        if email.status == Status.PROCESSED:
            if not email.failed_rows:
                return None
            _rerun_failed_rows(email)
        else:
            email.status, email.result, email.error, email.report_sent_at = Status.RECEIVED, [], "", None
            _process_locked(email)
        email.result, email.error = no_nul(email.result), no_nul(email.error)
        email.processed_at = timezone.now()
        email.save(update_fields=["status", "error", "result", "sent_at", "processed_at", "report_sent_at"])
    return email.status


def _rerun_failed_rows(email: InboundEmail) -> None:
    failed_rows = {r["row"] for r in email.failed_rows}
    try:
        parsed = parse_message(fmt=email.agent.email_format, raw=bytes(email.raw or b""))
    except ParseFailure:
        return
    rerun = [a for a in parsed.actions if a.row in failed_rows]
    sent_at = plausible_sent_at(parsed.sent_at, email.received_at) or email.received_at
    fresh = {r["row"]: r for r in apply_actions(email=email, sent_at=sent_at, actions=rerun)}
    email.result = [fresh.get(r["row"], r) for r in email.result]
    email.report_sent_at = None


def inbound_email_sweep(
    *, older_than: timedelta = SWEEP_AFTER, limit: int = SWEEP_BATCH, budget_s: float = SWEEP_BUDGET_S
) -> int:
    """The outbox sweep: process messages still `received` after `older_than` (their job was lost). Returns the
    number processed. Rows locked by a running job are skipped, not waited for. Stops after `budget_s` seconds
    (the next run goes on), so that a backlog never holds a worker, or a shutdown, for long."""
    done = 0
    cutoff = timezone.now() - older_than
    deadline = time.monotonic() + budget_s
    for message_id in _stale_ids(cutoff, limit):
        if time.monotonic() > deadline:
            break
        try:
            if inbound_email_process(message_id=message_id) is not None:
                done += 1
        except DatabaseError:
            log.exception("sweep: message %s not processed, will retry", message_id)
    if done:
        log.info("mail sweep processed %s message(s) the queue had missed", done)
    return done


def _stale_ids(cutoff, limit: int) -> list[int]:
    with transaction.atomic():
        return list(
            InboundEmail.objects.select_for_update(skip_locked=True)
            .filter(status=Status.RECEIVED, received_at__lt=cutoff)
            .order_by("received_at")
            .values_list("id", flat=True)[:limit]
        )


def inbound_email_purge_raw(*, now=None) -> int:
    """Delete raw messages older than RAW_EMAIL_RETENTION_DAYS (the rows, results and bookings stay)."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.RAW_EMAIL_RETENTION_DAYS)
    return InboundEmail.objects.filter(received_at__lt=cutoff, raw__isnull=False).update(raw=None, raw_deleted_at=now)


def inbound_email_send_error_report(*, message_id: int) -> bool:
    """Mail the agent a short report of a failed message or its failed rows, once. False if nothing was sent."""
    from apps.mail.reports import build_error_report

    with transaction.atomic():
        email = InboundEmail.objects.select_for_update(of=("self",)).select_related("agent").get(pk=message_id)
        address = email.agent.error_report_address if email.agent else ""
        if email.report_sent_at is not None or not address:
            return False
        if email.status != Status.FAILED and not email.failed_rows:
            return False
        build_error_report(email, address).send()
        email.report_sent_at = timezone.now()
        email.save(update_fields=["report_sent_at"])
    return True
