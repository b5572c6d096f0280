"""`labels` format (docs/email-ingress.md 3.1): one booking as "Label: value" lines, in text or HTML (lines or a
two-column table). Each readable body is tried in turn (plain first), so a mangled plain alternative produced by
a mail client does not hide a good HTML one."""

from email.message import Message

from apps.mail import mime
from apps.mail.parsers.base import (
    BookingAction,
    ParseFailure,
    check_complete,
    norm_key,
    norm_value,
    parse_local,
    parse_money,
)

ACTIONS = {"new": "new", "amended": "amend", "cancelled": "cancel"}
FIELDS = {
    "booking status": "status",
    "booking reference": "agent_ref",
    "car park": "carpark_code",
    "customer name": "customer_name",
    "email": "customer_email",
    "mobile": "customer_phone",
    "drop off date": "arrival_date",
    "drop off time": "arrival_time",
    "return date": "departure_date",
    "return time": "departure_time",
    "outbound flight": "flight_outbound",
    "return flight": "flight_return",
    "registration": "registration",
    "make": "make",
    "model": "model",
    "colour": "colour",
    "total price": "price",
    "commission": "commission",
    "product": "product",  # a product code, e.g. MG; without it the agent's default product
}
DATE_FORMATS = ("%d/%m/%Y %H:%M",)


def fields_in(text: str) -> dict[str, str]:
    """Known labels -> values. A line splits at its first tab (table cells) or else its first colon."""
    found: dict[str, str] = {}
    for line in text.split("\n"):
        if "\t" in line:
            label, _, rest = line.partition("\t")
            value = next((cell for cell in rest.split("\t") if cell.strip()), "")
        else:
            label, sep, value = line.partition(":")
            if not sep:
                continue
        name = FIELDS.get(norm_key(label))
        if name and name not in found:
            found[name] = norm_value(value)
    return found


def parse(msg: Message) -> list[BookingAction]:
    candidates = [fields_in(text) for text in mime.text_bodies(msg)]
    booking = [f for f in candidates if f.get("status") and f.get("agent_ref")]
    if not booking:
        if any(f.get("status") or f.get("agent_ref") for f in candidates):
            partial = next(f for f in candidates if f.get("status") or f.get("agent_ref"))
            missing = "Booking Reference" if partial.get("status") else "Booking Status"
            raise ParseFailure(f"missing {missing}")
        return []  # no booking in it (a daily report, an auto-reply...)
    return [action_from(booking[0])]


def action_from(f: dict[str, str]) -> BookingAction:
    status = norm_key(f["status"])
    if status not in ACTIONS:
        raise ParseFailure(f"unknown Booking Status {f['status']!r} (New, Amended or Cancelled)")
    action = BookingAction(row=1, action=ACTIONS[status], agent_ref=f["agent_ref"])
    if action.action == "cancel":
        return action
    for attr in ("carpark_code", "customer_name", "customer_email", "customer_phone", "registration", "make",
                 "model", "colour", "flight_outbound", "flight_return", "product"):  # fmt: skip
        setattr(action, attr, f.get(attr, ""))
    try:
        action.arrival = _when(f, "arrival", "Drop Off")
        action.departure = _when(f, "departure", "Return")
        action.price = parse_money(f.get("price", ""), "Total Price")
        action.commission = parse_money(f.get("commission", ""), "Commission")
    except ValueError as exc:
        raise ParseFailure(str(exc)) from None
    check_complete(action)
    if action.error:
        raise ParseFailure(action.error)
    return action


def _when(f: dict[str, str], prefix: str, label: str):
    date, time = f.get(f"{prefix}_date", ""), f.get(f"{prefix}_time", "")
    if not date or not time:
        return None  # reported as missing by check_complete
    return parse_local(f"{date} {time}", DATE_FORMATS, f"{label} Date/Time")
