"""The price of a stay of a product: a pure function of (calendar, fare, stay, channel, booking time, the days'
occupancy), with the breakdown customers and staff see (no database, no clock).

Each local date of the stay (apps.bookings.pricing.stay_dates: the days a booking holds) is priced alone:
1. its base: the most specific calendar range covering it (brand and channel, brand, channel, neither), at the
   rate of its length-of-stay band for day N of the stay (as the tariffs' bands); none: the car park's tariff;
2. adjusted, each in turn (compounding), by the weekday's rule, the lead-time rule (the booking's local date to the
   arrival's), the occupancy band the day has reached (percent of the product's spaces held) and the fare;
3. rounded to the penny. The days' sum is at least the ranges' (or tariff's) minimum charge; extras are added and
   a promo code's discount taken off that stay price (never below zero). Without a rate for some day: no price.
"""

from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

PENNY = Decimal("0.01")
HUNDRED = Decimal("100")
ZERO = Decimal("0")


def _starts(season: "Season") -> date:
    return season.starts


def money(value: Decimal) -> Decimal:
    return value.quantize(PENNY, rounding=ROUND_HALF_UP)


class Tariff(Protocol):
    """A car park's tariff (apps.bookings.pricing.TariffRule): what a day no calendar range covers costs."""

    minimum_charge: Decimal

    def rate_for_day(self, day_number: int) -> Decimal: ...


@dataclass(frozen=True)
class Season:
    starts: date
    ends: date  # inclusive
    daily_rate: Decimal
    minimum_charge: Decimal = ZERO
    bands: tuple[tuple[int, Decimal], ...] = ()
    brand_id: int | None = None
    channel: str = ""

    @property
    def specificity(self) -> int:
        return 2 * (self.brand_id is not None) + (self.channel != "")

    def rate_for_day(self, day_number: int) -> tuple[Decimal, int | None]:
        rate, band = self.daily_rate, None
        for from_day, band_rate in self.bands:
            if from_day <= day_number:
                rate, band = band_rate, from_day
        return rate, band


@dataclass(frozen=True)
class Rule:
    kind: str  # weekday | lead_time | occupancy (apps.products.models.PriceRule.Kind)
    threshold: int
    percent: Decimal


@dataclass(frozen=True)
class Calendar:
    """A product's price calendar as plain data (apps.products.selectors.calendar)."""

    seasons: tuple[Season, ...] = ()
    rules: tuple[Rule, ...] = ()
    tariff: Tariff | None = None  # the car park's (or brand's) tariff: days no range covers
    # With the seasons sorted by `starts`, the longest range's length in days: a stay then looks only at the ranges
    # starting between (its first day - span) and its last day (a year of daily ranges is 366 per product).
    span: int | None = None

    def window(self, first: date, last: date, brand_id: int | None, channel: str) -> list[Season]:
        seasons = self.seasons
        if self.span is not None:
            lo = bisect_left(seasons, first - timedelta(days=self.span), key=_starts)
            seasons = seasons[lo : bisect_right(seasons, last, key=_starts)]
        return [s for s in seasons if s.ends >= first and s.brand_id in (None, brand_id) and s.channel in ("", channel)]

    def rule(self, kind: str, reached: int | Decimal) -> Rule | None:
        best = None
        for r in self.rules:
            applies = r.kind == kind and r.threshold <= reached and (kind != "weekday" or r.threshold == reached)
            if applies and (best is None or r.threshold > best.threshold):
                best = r
        return best


@dataclass(frozen=True)
class FarePrice:
    code: str
    percent: Decimal = ZERO


@dataclass(frozen=True)
class ExtraItem:
    code: str
    name: str
    price: Decimal
    per_day: bool
    quantity: int


@dataclass(frozen=True)
class Promo:
    code: str
    percent: bool
    value: Decimal


@dataclass(frozen=True)
class DayPrice:
    date: date
    base: Decimal
    rules: tuple[str, ...]  # what set the base and each adjustment, in words
    amount: Decimal


@dataclass(frozen=True)
class Line:
    label: str
    amount: Decimal


@dataclass(frozen=True)
class Breakdown:
    days: tuple[DayPrice, ...]
    stay: Decimal  # the days' sum, at least the minimum charge
    minimum_applied: bool
    extras: tuple[Line, ...] = field(default=())
    discount: Line | None = None
    total: Decimal = ZERO

    def as_dict(self) -> dict:
        """As the API, the site and the booking's record show it."""
        return {
            "days": [
                {
                    "date": d.date.isoformat(),
                    "base": f"{d.base:.2f}",
                    "rules": list(d.rules),
                    "amount": f"{d.amount:.2f}",
                }
                for d in self.days
            ],
            "stay": f"{self.stay:.2f}",
            "minimum_applied": self.minimum_applied,
            "extras": [{"label": x.label, "amount": f"{x.amount:.2f}"} for x in self.extras],
            "discount": None
            if self.discount is None
            else {"label": self.discount.label, "amount": f"{self.discount.amount:.2f}"},
            "total": f"{self.total:.2f}",
        }


def _percent(value: Decimal, percent: Decimal) -> Decimal:
    return value * (HUNDRED + percent) / HUNDRED


def _signed(percent: Decimal) -> str:
    return f"{percent.normalize():+f}%"


def price_stay(
    calendar: Calendar,
    fare: FarePrice,
    *,
    dates: list[date],
    brand_id: int | None,
    channel: str,
    booked_on: date,
    occupancy: Mapping[date, Decimal],
    extras: tuple[ExtraItem, ...] = (),
    promo: Promo | None = None,
) -> Breakdown | None:
    """The stay's price and its breakdown; None when some day has no rate. `booked_on`: the booking's local date;
    `occupancy`: percent of the product's spaces held per date (missing: 0)."""
    return price_fares(
        calendar,
        [fare],
        dates=dates,
        brand_id=brand_id,
        channel=channel,
        booked_on=booked_on,
        occupancy=occupancy,
        extras=extras,
        promo=promo,
    )[0]


def price_fares(
    calendar: Calendar,
    fares: list[FarePrice],
    *,
    dates: list[date],
    brand_id: int | None,
    channel: str,
    booked_on: date,
    occupancy: Mapping[date, Decimal],
    extras: tuple[ExtraItem, ...] = (),
    promo: Promo | None = None,
) -> list[Breakdown | None]:
    """`price_stay` for each of a product's fares (a quote shows them all): the days' bases and rules, which no fare
    changes, are worked out once."""
    lead_days = (dates[0] - booked_on).days
    lead = calendar.rule("lead_time", lead_days)
    before_fare, minimum = [], ZERO  # per day: (date, base, words, amount before the fare)
    window = calendar.window(dates[0], dates[-1], brand_id, channel)
    for number, day in enumerate(dates, start=1):
        covering = [s for s in window if s.starts <= day <= s.ends]
        if covering:
            season = max(covering, key=lambda s: s.specificity)
            base, band = season.rate_for_day(number)
            why = [f"{season.starts:%d %b} to {season.ends:%d %b %Y}" + (f", day {band}+ rate" if band else "")]
            minimum = max(minimum, season.minimum_charge)
        elif calendar.tariff is not None:
            base = calendar.tariff.rate_for_day(number)
            why = ["tariff"]
            minimum = max(minimum, calendar.tariff.minimum_charge)
        else:
            return [None] * len(fares)
        amount = base
        weekday = calendar.rule("weekday", day.isoweekday())
        full = calendar.rule("occupancy", occupancy.get(day, ZERO))
        for rule, words in (
            (weekday, f"{day:%A}"),
            (lead, f"booked {lead.threshold}+ days ahead" if lead else ""),
            (full, f"{full.threshold}%+ sold" if full else ""),
        ):
            if rule is not None and rule.percent:
                amount = _percent(amount, rule.percent)
                why.append(f"{words} {_signed(rule.percent)}")
        before_fare.append((day, money(base), why, amount))
    lines = tuple(
        Line(
            f"{x.name} x {x.quantity}" + (f" x {len(dates)} days" if x.per_day else ""),
            money(x.price * x.quantity * (len(dates) if x.per_day else 1)),
        )
        for x in extras
    )
    return [_with_fare(fare, before_fare, minimum, lines, promo) for fare in fares]


def _with_fare(fare: FarePrice, before_fare: list, minimum: Decimal, lines: tuple, promo: Promo | None) -> Breakdown:
    days = []
    for day, base, why, amount in before_fare:
        if fare.percent:
            amount = _percent(amount, fare.percent)
            why = [*why, f"{fare.code} fare {_signed(fare.percent)}"]
        days.append(DayPrice(day, base, tuple(why), money(amount)))
    summed = sum((d.amount for d in days), ZERO)
    stay = max(summed, money(minimum))
    discount = None
    if promo is not None:
        off = money(stay * promo.value / HUNDRED) if promo.percent else min(promo.value, stay)
        label = f"{promo.code} ({promo.value.normalize():f}% off)" if promo.percent else f"{promo.code}"
        discount = Line(label, money(off))
    total = stay + sum((x.amount for x in lines), ZERO) - (discount.amount if discount else ZERO)
    return Breakdown(tuple(days), stay, summed < minimum, lines, discount, money(max(total, ZERO)))


def parse_bands(text: str) -> tuple[tuple[int, Decimal], ...]:
    """'4:10.00 8:8.00' -> ((4, Decimal('10.00')), (8, Decimal('8.00'))); ValueError on anything else."""
    bands = []
    for part in text.replace(",", " ").split():
        day, _, rate = part.partition(":")
        if not day.isdigit() or int(day) < 2 or not rate:
            raise ValueError(f"band {part!r}: expected DAY:RATE with DAY from 2")
        amount = Decimal(rate)
        if not amount.is_finite() or amount < 0:
            raise ValueError(f"band {part!r}: the rate must be an amount")
        bands.append((int(day), amount))
    if len({d for d, _ in bands}) != len(bands):
        raise ValueError("two bands start on the same day")
    return tuple(sorted(bands))
