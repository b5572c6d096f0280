"""`fixed` format (docs/email-ingress.md 3.3): 80-column records in the body, as the oldest systems send them.

Record detection follows the spec exactly: after padding to 80 columns, column 1 is N, A or C; columns 2-13 hold a
left-aligned reference (letters, digits, `-`, `/`); and either columns 22-45 are all digits (a full record, required
for N and A), or, for C, everything after column 13 is blank. Every other line is ignored.
"""

import re
from email.message import Message

from apps.mail import mime
from apps.mail.parsers.base import BookingAction, check_complete, parse_local

ACTIONS = {"N": "new", "A": "amend", "C": "cancel"}
WIDTH = 80
_REFERENCE = re.compile(r"[A-Za-z0-9/-]+ *")
_DIGITS = re.compile(r"[0-9]{24}")
DATE_FORMAT = ("%Y%m%d%H%M",)


def is_record(line: str) -> bool:
    if len(line) != WIDTH or line[0] not in ACTIONS or not _REFERENCE.fullmatch(line[1:13]):
        return False
    full = bool(_DIGITS.fullmatch(line[21:45]))
    return full or (line[0] == "C" and not line[13:].strip())


def records(text: str) -> list[str]:
    lines = (raw.rstrip(" \t") for raw in mime.normalise_newlines(text.lstrip("\ufeff")).split("\n"))
    return [padded for padded in (line.ljust(WIDTH) for line in lines if len(line) <= WIDTH) if is_record(padded)]


def parse(msg: Message) -> list[BookingAction]:
    for text in mime.text_bodies(msg):  # plain first; an HTML-only message is read from its rendered text
        found = records(text)
        if found:
            return [action_from(line, row) for row, line in enumerate(found, start=1)]
    return []


def action_from(line: str, row: int) -> BookingAction:
    action = BookingAction(row=row, action=ACTIONS[line[0]], agent_ref=line[1:13].strip())
    if action.action == "cancel":
        return action
    action.carpark_code = line[13:21].strip()
    action.registration = line[45:55].strip()
    action.customer_name = " ".join(line[55:80].split())
    try:
        action.arrival = parse_local(line[21:33], DATE_FORMAT, "arrival")
        action.departure = parse_local(line[33:45], DATE_FORMAT, "departure")
    except ValueError as exc:
        action.error = str(exc)
    return check_complete(action)
