"""What every format parser returns: booking actions, one per booking (or CSV row / fixed record).

Parsers are pure functions `parse(msg) -> list[BookingAction]`. A message-level problem (nothing can be read)
raises ParseFailure with a reason for staff; a problem with one row is that action's `error`. An empty list means
the message carries no bookings (`ignored`).
"""

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation


class ParseFailure(ValueError):
    """The message cannot be applied at all; str(exc) is the reason shown to staff and the agent."""


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str | None  # None when the value carried no sign or code


@dataclass
class BookingAction:
    row: int  # position in the message, from 1 (file order)
    action: str  # "new", "amend" or "cancel"; "" when unreadable (then `error` says why)
    agent_ref: str
    carpark_code: str = ""
    arrival: datetime | None = None  # naive, local time of the car park
    departure: datetime | None = None
    customer_name: str = ""
    customer_email: str = ""
    customer_phone: str = ""
    registration: str = ""
    make: str = ""
    model: str = ""
    colour: str = ""
    flight_outbound: str = ""
    flight_return: str = ""
    price: Money | None = None
    commission: Money | None = None
    product: str = ""  # a product code (apps.products); "" when the format has none: the agent's default
    error: str = ""
    source: dict = field(default_factory=dict)  # where it came from (e.g. CSV file name), for the result

    def as_dict(self) -> dict:
        return asdict(self)


REQUIRED_FOR_BOOKING = {
    "carpark_code": "car park",
    "arrival": "arrival",
    "departure": "departure",
    "customer_name": "customer name",
    "registration": "registration",
}


def missing_fields(action: BookingAction) -> list[str]:
    """Names of the fields a new or amend needs and lacks."""
    if action.action == "cancel":
        return []
    return [label for attr, label in REQUIRED_FOR_BOOKING.items() if not getattr(action, attr)]


def check_complete(action: BookingAction) -> BookingAction:
    """Set `error` on a new/amend that lacks a required field (unless it already has an error)."""
    if not action.error:
        missing = missing_fields(action)
        if missing:
            action.error = "missing " + ", ".join(missing)
    return action


_CURRENCY_SIGNS = {"£": "GBP", "€": "EUR", "$": "USD"}
_MONEY = re.compile(
    r"^(?P<pre>[£€$]|[A-Za-z]{3})?\s*(?P<amount>\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:\.\d{1,2})?)\s*(?P<post>[A-Za-z]{3})?$"
)


def parse_money(value: str, label: str) -> Money | None:
    """`£54.99`, `GBP 54.99`, `54.99 GBP`, `54.99` -> Money; "" -> None; anything else -> ValueError."""
    text = (value or "").strip().replace("\u00a0", " ")
    if not text:
        return None
    match = _MONEY.match(text)
    if not match or (match["pre"] and match["post"]):
        raise ValueError(f"unreadable {label} {value!r}")
    code = match["pre"] or match["post"]
    currency = _CURRENCY_SIGNS.get(code, code.upper() if code else None) if code else None
    try:
        amount = Decimal(match["amount"].replace(",", ""))
    except InvalidOperation:
        raise ValueError(f"unreadable {label} {value!r}") from None
    return Money(amount=amount, currency=currency)


def parse_local(value: str, formats: tuple[str, ...], label: str) -> datetime:
    text = " ".join((value or "").split())
    for fmt in formats:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise ValueError(f"unreadable {label} {value!r}")


def norm_key(label: str) -> str:
    """Labels and headers match regardless of case, surrounding spaces and a final colon."""
    return " ".join(label.replace("\u00a0", " ").strip().rstrip(":").split()).casefold()


def norm_value(value: str) -> str:
    return " ".join((value or "").replace("\u00a0", " ").split())
