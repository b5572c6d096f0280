"""Text messages through a provider interface: `send(to, text) -> provider id`. SMS_BACKEND picks the backend:

- `console` (the demo's default): written to the log, nothing leaves the machine;
- `http`: POST {"to", "text", "from"} as JSON to SMS_HTTP_URL with `Authorization: Bearer SMS_HTTP_TOKEN`, the shape
  of most providers' REST APIs and of a small relay in front of any other; the answer's `id` is the provider's id.
"""

import logging
from typing import Protocol

import httpx
from django.conf import settings

log = logging.getLogger(__name__)


class SmsError(Exception):
    """The provider refused or could not be reached: the message stays pending and is retried."""


class SmsBackend(Protocol):
    def send(self, *, to: str, text: str) -> str: ...


class ConsoleBackend:
    def send(self, *, to: str, text: str) -> str:
        log.info("SMS to %s: %s", to, text)
        return ""


class HttpBackend:
    def __init__(self, url: str, token: str, sender: str):
        self.url, self.token, self.sender = url, token, sender

    def send(self, *, to: str, text: str) -> str:
        try:
            answer = httpx.post(
                self.url,
                json={"to": to, "text": text, "from": self.sender},
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=10,
            )
        except httpx.HTTPError as exc:
            raise SmsError(f"SMS provider unreachable: {exc}") from exc
        if answer.status_code >= 300:
            raise SmsError(f"SMS provider answered {answer.status_code}: {answer.text[:200]}")
        return str(answer.json().get("id", ""))


def backend() -> SmsBackend:
    if settings.SMS_BACKEND == "http":
        return HttpBackend(settings.SMS_HTTP_URL, settings.SMS_HTTP_TOKEN, settings.SMS_SENDER)
    return ConsoleBackend()
