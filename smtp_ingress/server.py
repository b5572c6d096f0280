"""The SMTP listener: aiosmtpd's SMTP protocol served with loop.create_server on the server's own loop.

aiosmtpd already streams DATA: once a message passes `data_size_limit` it discards what it has read and only
drains the rest (smtp_DATA's TOO_MUCH state), so an oversized message is never held whole. ParkgateSMTP adds what
the spec asks on top: enhanced status codes for size refusals, a cap on concurrent sessions, and STARTTLS.
"""

import asyncio
import logging
import ssl

from aiosmtpd.smtp import SMTP
from django.conf import settings

from apps.core import metrics
from smtp_ingress.handler import BookingMailHandler, capture_credentials

log = logging.getLogger(__name__)

TOO_BIG = "552 5.3.4 Message too big for this server"
TOO_MANY_SESSIONS = "421 4.3.2 Too many connections, try again later"


class SessionCount:
    def __init__(self, limit: int):
        self.limit, self.active = limit, 0


class ParkgateSMTP(SMTP):
    # RFC 5321 says 1000; real agents' systems send longer lines (one-line HTML). The reader never holds more.
    line_length_limit = 64 * 1024

    def __init__(self, handler, *, sessions: SessionCount, **kwargs):
        super().__init__(handler, **kwargs)
        self.sessions = sessions
        self.counted = False

    def connection_made(self, transport) -> None:
        first = self.transport is None  # STARTTLS calls this again for the same session
        super().connection_made(transport)
        if first:
            metrics.smtp_sessions_total.inc()
        if first and self.sessions.active < self.sessions.limit:
            self.sessions.active += 1
            self.counted = True

    def connection_lost(self, error) -> None:
        if self.counted:
            self.sessions.active -= 1
            self.counted = False
        super().connection_lost(error)

    async def _handle_client(self) -> None:
        # aiosmtpd's session loop; a session over the cap gets 421 instead of the greeting.
        if not self.counted:
            log.warning("SMTP: %s sessions open, refusing %r", self.sessions.active, self.session.peer)
            await self.push(TOO_MANY_SESSIONS)
            self.transport.close()
            return
        await super()._handle_client()

    async def push(self, status: str | bytes) -> None:
        # aiosmtpd's own size refusals (MAIL FROM SIZE=, and DATA past the limit) lack the enhanced code.
        if isinstance(status, str) and status.startswith("552 Error:"):
            status = f"{TOO_BIG} (at most {self.data_size_limit} bytes)"
        code = status[:3]
        metrics.smtp_replies_total.labels(code.decode() if isinstance(code, bytes) else code).inc()
        await super().push(status)


def tls_context() -> ssl.SSLContext | None:
    if not (settings.SMTP_TLS_CERT and settings.SMTP_TLS_KEY):
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.SMTP_TLS_CERT, settings.SMTP_TLS_KEY)
    return context


def build_protocol_factory(handler: BookingMailHandler, sessions: SessionCount | None = None):
    sessions = sessions or SessionCount(settings.SMTP_MAX_SESSIONS)
    context = tls_context()

    def factory() -> SMTP:
        return ParkgateSMTP(
            handler,
            sessions=sessions,
            hostname=settings.SMTP_HOSTNAME,
            ident="ESMTP",  # the banner names the host, never the software or its version (aiosmtpd's default)
            data_size_limit=settings.SMTP_MAX_MESSAGE_BYTES,
            enable_SMTPUTF8=True,
            tls_context=context,
            authenticator=capture_credentials,
            auth_require_tls=True,
            timeout=60,
        )

    return factory


async def start_smtp_server(host: str, port: int) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(build_protocol_factory(BookingMailHandler()), host=host, port=port)
    if tls_context() is not None:
        log.info("SMTP: STARTTLS enabled")
    return server
