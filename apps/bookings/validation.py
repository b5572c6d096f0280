"""A booking's input checked before anything is written: vehicles, email, money, the bookable window, the
agent's contract and terms (apps.bookings.terms)."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone

from apps.agents.models import Agent
from apps.bookings import terms
from apps.bookings.errors import BookingInvalid, NotContracted
from apps.carparks.models import Brand, CarPark
from apps.core import plates

MAX_STAY = timedelta(days=92)
# The bookable window: no stay before 2000, none ending more than about three years ahead. Beyond it a time is a
# client's mistake (or an attack: year 9999 overflows date arithmetic), refused for the API and email alike.
EARLIEST_TIME = datetime(2000, 1, 1, tzinfo=UTC)
HORIZON = timedelta(days=3 * 366)
MAX_VEHICLES = 5
PENNY = Decimal("0.01")


# --- validation ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VehicleInput:
    raw: str
    registration: str
    make: str
    model: str
    colour: str


def text_field(value, name: str, max_length: int, *, required: bool = False) -> str:
    text = "" if value is None else str(value).strip()
    if "\x00" in text:
        raise BookingInvalid(f"{name} contains a NUL character")
    if required and not text:
        raise BookingInvalid(f"{name} is required")
    if len(text) > max_length:
        raise BookingInvalid(f"{name} is too long (at most {max_length} characters)")
    return text


def clean_vehicles(vehicles) -> list[VehicleInput]:
    if not isinstance(vehicles, list | tuple):
        raise BookingInvalid("vehicles must be a list")
    cleaned = []
    for v in vehicles:
        v = {"registration": v} if isinstance(v, str) else v
        if not isinstance(v, dict):
            raise BookingInvalid("each vehicle needs a registration")
        raw = text_field(v.get("registration"), "registration", 20)
        normal = plates.normalise(raw)
        if not normal:
            if raw:
                raise BookingInvalid(f"{raw!r} is not a vehicle registration")
            continue
        cleaned.append(
            VehicleInput(
                raw=raw,
                registration=normal,
                make=text_field(v.get("make"), "make", 40),
                model=text_field(v.get("model"), "model", 40),
                colour=text_field(v.get("colour"), "colour", 30),
            )
        )
    if not cleaned:
        raise BookingInvalid("at least one vehicle registration is required")
    if len(cleaned) > MAX_VEHICLES:
        raise BookingInvalid(f"at most {MAX_VEHICLES} vehicles per booking")
    if len({v.registration for v in cleaned}) != len(cleaned):
        raise BookingInvalid("the same registration is given twice")
    return cleaned


def clean_email(value) -> str:
    email = text_field(value, "email", 254)
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise BookingInvalid(f"{email!r} is not an email address") from None
    return email


def clean_money(value, name: str) -> Decimal | None:
    if value is None:
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise BookingInvalid(f"{name} must be an amount like 54.99") from None
    if not amount.is_finite() or amount < 0 or amount >= Decimal("100000000"):
        raise BookingInvalid(f"{name} must be an amount between 0 and 99999999.99")
    return amount.quantize(PENNY, rounding=ROUND_HALF_UP)


def check_times(arrival: datetime, departure: datetime) -> None:
    if not isinstance(arrival, datetime) or not isinstance(departure, datetime):
        raise BookingInvalid("arrival and departure must be dates and times")
    if arrival.tzinfo is None or departure.tzinfo is None:
        raise BookingInvalid("arrival and departure must carry a time zone")
    latest = timezone.now() + HORIZON
    for name, when in (("arrival", arrival), ("departure", departure)):
        if not EARLIEST_TIME <= when <= latest:
            window = f"{EARLIEST_TIME:%Y-%m-%d} and {latest:%Y-%m-%d}"
            raise BookingInvalid(f"{name} must be between {window} (UTC)", field=name)
    if departure <= arrival:
        raise BookingInvalid("departure must be after arrival", field="departure")
    if departure - arrival > MAX_STAY:
        raise BookingInvalid(f"a stay can be at most {MAX_STAY.days} days", field="departure")


def stay_times_check(*, arrival: datetime, departure: datetime) -> None:
    """The rules a stay's times obey (window, order, length), for quotes that make no booking; BookingInvalid."""
    check_times(arrival, departure)


def check_seller(carpark: CarPark, agent: Agent | None, brand: Brand | None) -> None:
    if agent is not None and not agent.carparks.filter(pk=carpark.pk).exists():
        raise NotContracted(f"agent {agent.code} is not contracted for {carpark.code}")
    if brand is not None and not carpark.brands.filter(pk=brand.pk).exists():
        raise BookingInvalid(f"{brand.name} does not sell {carpark.name}")


def commission_checked(commission, agent: Agent | None, price: Decimal, *, correct=False, notes=None) -> Decimal | None:
    """The agent's own figure when given (held to its terms), else its contracted rate of the price."""
    amount = clean_money(commission, "commission")
    if agent is not None and amount is None:
        return terms.contracted_commission(agent, price)
    if agent is not None:
        return _within_terms(
            terms.agree_commission, notes, agent=agent, price=price, commission=amount, correct=correct
        )
    return amount


def agent_price(
    agent: Agent | None, price: Decimal, notes: list, *, correct: bool, reference: Decimal | None
) -> Decimal:
    """A price the agent stated for the stay, held to its terms against what we would charge (`reference`);
    a price with no agent is taken as given."""
    if agent is None:
        return price
    return _within_terms(terms.agree_price, notes, agent=agent, price=price, correct=correct, reference=reference)


def _within_terms(agree, notes: list | None, **figures):
    """apps.bookings.terms' verdict on a figure an agent stated: refused naming the field, or noted for review."""
    try:
        value, note = agree(**figures)
    except terms.OutOfTerms as exc:
        raise BookingInvalid(str(exc), field=exc.field) from None
    if note and notes is not None:
        notes.append(note)
    return value
