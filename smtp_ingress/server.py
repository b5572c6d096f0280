"""The SMTP listener: aiosmtpd's SMTP protocol served with loop.create_server on the server's own loop."""

import asyncio
import logging

from aiosmtpd.smtp import SMTP
from django.conf import settings

from smtp_ingress.handler import BookingMailHandler

log = logging.getLogger(__name__)


def build_protocol_factory(handler: BookingMailHandler):
    def factory() -> SMTP:
        return SMTP(
            handler,
            hostname=settings.SMTP_HOSTNAME,
            data_size_limit=settings.SMTP_MAX_MESSAGE_BYTES,
            enable_SMTPUTF8=True,
            timeout=60,
        )

    return factory


async def start_smtp_server(host: str, port: int) -> asyncio.Server:
    handler = BookingMailHandler()
    loop = asyncio.get_running_loop()
    return await loop.create_server(build_protocol_factory(handler), host=host, port=port)
