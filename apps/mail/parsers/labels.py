"""`labels` format (email-ingress.md 3.1): one booking as "Label: value" lines."""

from datetime import datetime
from decimal import Decimal, InvalidOperation
from email.message import EmailMessage

ACTIONS = {"new": "new", "amended": "amend", "cancelled": "cancel"}


def _text(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    if part is None:
        raise ValueError("no text body")
    return part.get_content().lstrip("\ufeff")


def _fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        label, sep, value = line.partition(":")
        if sep:
            fields.setdefault(label.strip().lower(), value.strip())
    return fields


def _money(value: str) -> Decimal | None:
    cleaned = value.replace("£", "").replace("GBP", "").replace(",", "").strip()
    if not cleaned:
        return None
    try:
        return Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"unreadable amount {value!r}") from None


def _local(date: str, time: str, label: str) -> datetime:
    try:
        return datetime.strptime(f"{date} {time}", "%d/%m/%Y %H:%M")
    except ValueError:
        raise ValueError(f"unreadable {label} {date!r} {time!r}") from None


def parse(msg: EmailMessage) -> list[dict]:
    f = _fields(_text(msg))
    status = f.get("booking status", "").lower()
    if status not in ACTIONS:
        raise ValueError(f"unknown Booking Status {status!r}")
    ref = f.get("booking reference")
    if not ref:
        raise ValueError("missing Booking Reference")
    action = {"action": ACTIONS[status], "agent_ref": ref}
    if action["action"] == "cancel":
        return [action]
    for label in (
        "car park",
        "customer name",
        "registration",
        "drop off date",
        "drop off time",
        "return date",
        "return time",
    ):
        if not f.get(label):
            raise ValueError(f"missing {label.title()}")
    action |= {
        "carpark_code": f["car park"],
        "arrival_local": _local(f["drop off date"], f["drop off time"], "Drop Off"),
        "departure_local": _local(f["return date"], f["return time"], "Return"),
        "customer_name": f["customer name"],
        "customer_email": f.get("email", ""),
        "customer_phone": f.get("mobile", ""),
        "registrations": [f["registration"]],
        "price": _money(f.get("total price", "")),
        "commission": _money(f.get("commission", "")),
        "flight_outbound": f.get("outbound flight", ""),
        "flight_return": f.get("return flight", ""),
    }
    return [action]
