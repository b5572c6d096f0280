"""Inbound booking emails: durable receipt (before the SMTP 250), then parsing and applying in a job."""

import hashlib
import logging
from email import message_from_bytes, policy

from django.db import transaction
from django.utils import timezone

from apps.core.jobs import enqueue
from apps.mail.models import InboundEmail

log = logging.getLogger(__name__)


def body_hash(raw: bytes) -> str:
    """SHA-256 of the bytes after the header block, so that relays' added Received: lines do not matter."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        at = raw.find(sep)
        if at != -1:
            return hashlib.sha256(raw[at + len(sep) :]).hexdigest()
    return hashlib.sha256(b"").hexdigest()


def inbound_email_receive(*, agent_id: int, raw: bytes, mail_from: str, rcpt_tos: list[str], peer: str) -> int:
    """Store a message exactly as received and schedule its processing. Returns the stored id.

    Only the header block is looked at here (Message-ID, Subject); the body is parsed later, in the job.
    """
    headers = message_from_bytes(raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0], policy=policy.compat32)
    message_id = str(headers.get("Message-ID", "") or "").strip()[:998]
    subject = str(headers.get("Subject", "") or "").strip()[:998]
    digest = body_hash(raw)
    with transaction.atomic():
        original = (
            InboundEmail.objects.filter(agent_id=agent_id, message_id=message_id, body_hash=digest, duplicate_of=None)
            .order_by("id")
            .first()
        )
        email = InboundEmail.objects.create(
            agent_id=agent_id,
            raw=raw,
            size=len(raw),
            mail_from=mail_from,
            rcpt_tos=rcpt_tos,
            peer=peer,
            message_id=message_id,
            body_hash=digest,
            subject=subject,
            status=InboundEmail.Status.DUPLICATE if original else InboundEmail.Status.RECEIVED,
            duplicate_of=original,
        )
        if original is None:
            enqueue("mail.process", message_id=email.id)
    return email.id


def inbound_email_process(*, message_id: int) -> None:
    """Parse and apply one stored message. Idempotent: only a message still `received` is applied."""
    from apps.mail.parsers import parse_message

    with transaction.atomic():
        email = (
            InboundEmail.objects.select_for_update(of=("self",)).select_related("agent").filter(pk=message_id).first()
        )
        if email is None or email.status != InboundEmail.Status.RECEIVED:
            return
        try:
            actions = parse_message(fmt=email.agent.email_format, raw=bytes(email.raw))
        except ValueError as exc:
            email.status, email.error = InboundEmail.Status.FAILED, str(exc)
        else:
            results = [_apply(email, action) for action in actions]
            email.result = results
            email.status = InboundEmail.Status.PROCESSED if actions else InboundEmail.Status.IGNORED
        email.processed_at = timezone.now()
        email.save(update_fields=["status", "error", "result", "processed_at"])


def _apply(email: InboundEmail, action: dict) -> dict:
    from apps.bookings.services import booking_apply_from_agent

    try:
        with transaction.atomic():
            booking = booking_apply_from_agent(agent=email.agent, **action)
    except ValueError as exc:
        return {"agent_ref": action.get("agent_ref"), "result": "failed", "error": str(exc)}
    return {"agent_ref": action.get("agent_ref"), "result": "applied", "booking": booking.reference}
