"""Endpoints may not point into our own network (SSRF): loopback, private, link-local and other non-public
addresses are refused, when the endpoint is saved and again when it is sent to (a name may resolve elsewhere
later), unless WEBHOOKS_ALLOW_PRIVATE is on (tests, or a private integration network)."""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings


class AddressRefused(ValueError):
    pass


def check_url(url: str) -> None:
    """Raises AddressRefused (a ValueError) for a URL that is not http(s) or whose host resolves to a non-public
    address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AddressRefused("the URL must be http:// or https:// with a host")
    if settings.WEBHOOKS_ALLOW_PRIVATE:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        raise AddressRefused(f"{parts.hostname} does not resolve") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not address.is_global:
            raise AddressRefused(f"{parts.hostname} is a private or local address ({address})")
