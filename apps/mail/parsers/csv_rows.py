"""`csv` format (docs/email-ingress.md 3.2): many bookings as rows of a CSV attachment (`text/csv`, or any type named
`*.csv`). Each row is its own action: a bad row is reported (its `error`) and the others still apply."""

import csv
import io
from email.message import Message

from apps.mail import mime
from apps.mail.parsers.base import BookingAction, ParseFailure, check_complete, norm_key, parse_local, parse_money

ACTIONS = {"new": "new", "amend": "amend", "cancel": "cancel"}
COLUMNS = {
    "action": "action",
    "agent_ref": "agent_ref",
    "carpark": "carpark_code",
    "arrival": "arrival",
    "departure": "departure",
    "name": "customer_name",
    "email": "customer_email",
    "phone": "customer_phone",
    "registration": "registration",
    "price": "price",
    "commission": "commission",
    # not in the spec's example, but harmless to read when an agent sends them
    "make": "make",
    "model": "model",
    "colour": "colour",
    "outbound_flight": "flight_outbound",
    "return_flight": "flight_return",
    "product": "product",  # a product code, e.g. MG; without it the agent's default product
}
DATE_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M")
MAX_ROWS = 10_000


def csv_parts(msg: Message) -> list[tuple[str, Message]]:
    return [
        (name or "attachment.csv", part)
        for ctype, name, part in mime.attachments(msg)
        if ctype in ("text/csv", "application/csv", "text/comma-separated-values") or name.lower().endswith(".csv")
    ]


def parse(msg: Message) -> list[BookingAction]:
    actions: list[BookingAction] = []
    for name, part in csv_parts(msg):
        try:
            data = part.get_payload(decode=True)
        except Exception:
            data = None
        text = mime.decode_bytes(data if isinstance(data, bytes) else b"", _charset(part))
        actions += parse_csv_text(text, filename=name, first_row=len(actions) + 1)
    return actions


def parse_csv_text(text: str, *, filename: str = "", first_row: int = 1) -> list[BookingAction]:
    rows = [row for row in csv.reader(io.StringIO(text.lstrip("\ufeff"), newline="")) if any(c.strip() for c in row)]
    if not rows:
        return []
    header = [COLUMNS.get(norm_key(h).replace(" ", "_"), "") for h in rows[0]]
    for needed in ("action", "agent_ref"):
        if needed not in header:
            raise ParseFailure(f"{filename or 'CSV'}: the header row has no {needed!r} column")
    if len(rows) - 1 > MAX_ROWS:
        raise ParseFailure(f"{filename}: more than {MAX_ROWS} rows")
    return [
        _action(dict(zip(header, row, strict=False)), row_no=first_row + i, line=i + 2, filename=filename)
        for i, row in enumerate(rows[1:])
    ]


def _action(values: dict[str, str], *, row_no: int, line: int, filename: str) -> BookingAction:
    values.pop("", None)
    get = lambda key: (values.get(key) or "").strip()  # noqa: E731
    action = BookingAction(row=row_no, action="", agent_ref=get("agent_ref"), source={"file": filename, "line": line})
    kind = ACTIONS.get(norm_key(get("action")))
    if kind is None:
        action.error = f"unknown action {get('action')!r} (NEW, AMEND or CANCEL)"
        return action
    action.action = kind
    if not action.agent_ref:
        action.error = "missing agent_ref"
        return action
    if kind == "cancel":
        return action
    for attr in ("carpark_code", "customer_name", "customer_email", "customer_phone", "registration", "make",
                 "model", "colour", "flight_outbound", "flight_return", "product"):  # fmt: skip
        setattr(action, attr, get(attr))
    try:
        action.arrival = parse_local(get("arrival"), DATE_FORMATS, "arrival") if get("arrival") else None
        action.departure = parse_local(get("departure"), DATE_FORMATS, "departure") if get("departure") else None
        action.price = parse_money(get("price"), "price")
        action.commission = parse_money(get("commission"), "commission")
    except ValueError as exc:
        action.error = str(exc)
    return check_complete(action)


def _charset(part: Message) -> str | None:
    try:
        return part.get_content_charset()
    except Exception:
        return None
