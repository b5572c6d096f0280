"""Agent email formats: a registry of pure functions from a parsed message to booking actions (one module each)."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import Message

from apps.mail import mime
from apps.mail.parsers import csv_rows, fixed, labels
from apps.mail.parsers.base import BookingAction, Money, ParseFailure

__all__ = ["PARSERS", "BookingAction", "Money", "ParseFailure", "ParsedMessage", "parse_message"]

PARSERS: dict[str, Callable[[Message], list[BookingAction]]] = {
    "labels": labels.parse,
    "csv": csv_rows.parse,
    "fixed": fixed.parse,
}


@dataclass
class ParsedMessage:
    sent_at: datetime | None  # the Date header of the message carrying the bookings (the forwarded one, if any)
    actions: list[BookingAction]


def parse_message(*, fmt: str, raw: bytes) -> ParsedMessage:
    """Read a stored message in an agent's format. Raises ParseFailure (a ValueError) with a reason for staff."""
    parser = PARSERS.get(fmt)
    if parser is None:
        raise ParseFailure(f"no parser for format {fmt!r}")
    try:
        msg = mime.booking_message(mime.parse_bytes(raw))
    except mime.MessageTooComplex as exc:
        raise ParseFailure(f"message not read: {exc}") from None
    return ParsedMessage(sent_at=mime.sent_at(msg), actions=parser(msg))
