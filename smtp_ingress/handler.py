"""The SMTP handler (aiosmtpd hooks): check recipients and senders, store the raw message durably, then answer 250.

Nothing is parsed here: the reply must come quickly and must only promise what is committed. Every check that
needs the database answers 451 4.3.0 when it cannot be reached, never a permanent 5xx.
"""

import logging
import time

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from django.db import DatabaseError

from apps.core.concurrency import run_sync
from apps.mail import selectors, senders, smtp_auth
from smtp_ingress.batcher import ReceiptBatcher

log = logging.getLogger(__name__)

TEMPFAIL = "451 4.3.0 Temporary failure, please try again later"
NO_MAILBOX = "550 5.1.1 No such mailbox here"
REFUSED = "550 5.7.1 This client may not send mail for this agent"
ONE_AGENT = "452 4.5.3 One agent per message, please send separately"
AUTH_TEMPFAIL = "454 4.7.0 Temporary authentication failure, try again later"
BAD_SENDER = "501 5.1.7 Bad sender address syntax"
BAD_RECIPIENT = "501 5.1.3 Bad recipient address syntax"


def capture_credentials(server, session, envelope, mechanism, auth_data) -> AuthResult:
    """aiosmtpd's (sync) authenticator: only hands the decoded login over. The password is checked against the
    database by the handler's async auth_* methods below, off the event loop."""
    return AuthResult(success=isinstance(auth_data, LoginPassword), handled=False, auth_data=auth_data)


POLICY_TTL = 60.0


async def sender_policy(session, address: str) -> senders.SenderPolicy | None:
    """The agent's sender policy for a mailbox, remembered for the rest of the SMTP session (at most a minute):
    a relay delivering a burst over one session asks the database once, not per message. DatabaseError propagates.
    """
    key, now = address.strip().lower(), time.monotonic()
    cache = session.__dict__.setdefault("parkgate_policies", {})
    hit = cache.get(key)
    if hit and hit[0] > now:
        return hit[1]
    policy = await run_sync(selectors.sender_policy_for_mailbox, address=key)
    cache[key] = (now + POLICY_TTL, policy)
    return policy


class BookingMailHandler:
    def __init__(self):
        self.receipts = ReceiptBatcher()

    async def handle_MAIL(self, server, session, envelope, address: str, mail_options: list[str]) -> str:
        if has_control_character(address):
            return BAD_SENDER
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address: str, rcpt_options: list[str]) -> str:
        if has_control_character(address):
            return BAD_RECIPIENT  # a syntax error, permanent: not the database's 451 for a NUL it cannot store
        try:
            policy = await sender_policy(session, address)
        except DatabaseError:
            log.warning("RCPT %s: database unavailable", address)
            return TEMPFAIL
        if policy is None:
            return NO_MAILBOX
        reason = senders.refusal(
            policy,
            peer_ip=str(session.peer[0]) if session.peer else "",
            mail_from=envelope.mail_from or "",
            authenticated_as=_login(session),
        )
        if reason:
            log.warning("RCPT %s refused: %s", address, reason)
            return REFUSED
        known = getattr(envelope, "parkgate_agent_id", None)
        if known is not None and known != policy.agent_id:
            return ONE_AGENT
        envelope.parkgate_agent_id = policy.agent_id
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        try:
            stored_id = await self.receipts.store(
                {
                    "agent_id": envelope.parkgate_agent_id,
                    "raw": envelope.original_content,
                    "mail_from": envelope.mail_from or "",
                    "rcpt_tos": list(envelope.rcpt_tos),
                    "peer": str(session.peer[0]) if session.peer else "",
                }
            )
        except DatabaseError:
            log.exception("message not stored: database unavailable")
            return TEMPFAIL
        return f"250 2.0.0 Stored as {stored_id}"

    async def handle_exception(self, error: Exception) -> str:
        """Anything unexpected is a temporary failure for the client (it will retry), and a log line for us."""
        log.exception("SMTP session error", exc_info=error)
        return TEMPFAIL

    # --- SMTP AUTH (offered only after STARTTLS: aiosmtpd's auth_require_tls) -------------------------------------

    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self._verified(server, await SMTP.auth_PLAIN(server, server, args))

    async def auth_LOGIN(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self._verified(server, await SMTP.auth_LOGIN(server, server, args))

    async def _verified(self, server: SMTP, result: AuthResult) -> AuthResult:
        if not result.success:
            return result
        login = result.auth_data
        username = login.login.decode("utf-8", errors="replace")
        client = str(server.session.peer[0]) if server.session and server.session.peer else ""
        try:
            attempt = await run_sync(
                smtp_auth.smtp_auth_attempt,
                username=username,
                password=login.password.decode("utf-8", "replace"),
                client=client,
            )
        except Exception:  # the database or the cache (Redis) is down: try again later, never let anyone in
            log.exception("SMTP AUTH for %r not checked", username)
            return AuthResult(success=False, handled=False, message=AUTH_TEMPFAIL)
        if attempt.outcome is smtp_auth.AuthOutcome.THROTTLED:
            log.warning("SMTP AUTH for %r from %s throttled", username, client)
            return AuthResult(success=False, handled=False, message=AUTH_TEMPFAIL)
        if attempt.outcome is not smtp_auth.AuthOutcome.OK:
            log.warning("SMTP AUTH failed for %r from %s", username, client)
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, handled=False, auth_data=attempt.agent_ids)


def has_control_character(address: str) -> bool:
    """RFC 5321 allows no control character in a mailbox, not even quoted (qtextSMTP is %d32-126)."""
    return any(ord(c) < 32 or ord(c) == 127 for c in address)


def _login(session) -> frozenset[int] | None:
    """The agents an authenticated session may act for (AUTH's result), or None."""
    data = getattr(session, "auth_data", None)
    return data if isinstance(data, frozenset) and session.authenticated else None
