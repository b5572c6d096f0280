"""The SMTP handler: check recipients, store the raw message durably, then answer 250. Nothing is parsed here."""

import logging

from django.db import DatabaseError

from apps.core.concurrency import run_sync
from apps.mail import selectors, services

log = logging.getLogger(__name__)

TEMPFAIL = "451 4.3.0 Temporary failure, please try again later"


class BookingMailHandler:
    async def handle_RCPT(self, server, session, envelope, address: str, rcpt_options: list[str]) -> str:
        try:
            agent_id = await run_sync(selectors.agent_id_for_mailbox, address=address)
        except DatabaseError:
            log.warning("RCPT %s: database unavailable", address)
            return TEMPFAIL
        if agent_id is None:
            return "550 5.1.1 No such mailbox here"
        known = getattr(envelope, "parkgate_agent_id", None)
        if known is not None and known != agent_id:
            return "452 4.5.3 One agent per message, please send separately"
        envelope.parkgate_agent_id = agent_id
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        try:
            message_id = await run_sync(
                services.inbound_email_receive,
                agent_id=envelope.parkgate_agent_id,
                raw=envelope.original_content,
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                peer=str(session.peer[0]) if session.peer else "",
            )
        except DatabaseError:
            log.exception("message not stored: database unavailable")
            return TEMPFAIL
        return f"250 2.0.0 Stored as {message_id}"
