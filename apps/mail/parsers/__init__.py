"""Agent email formats: a registry of pure functions from a parsed message to booking actions."""

from email import message_from_bytes, policy
from email.message import EmailMessage

from apps.mail.parsers import labels

PARSERS = {"labels": labels.parse}


def parse_message(*, fmt: str, raw: bytes) -> list[dict]:
    """The booking actions (dicts with `action`: new/amend/cancel) in a message; ValueError if it is unreadable."""
    msg: EmailMessage = message_from_bytes(raw, policy=policy.default)
    try:
        parser = PARSERS[fmt]
    except KeyError:
        raise ValueError(f"no parser for format {fmt!r}") from None
    return parser(msg)
