"""The price of a stay: a pure function of the tariff and the stay (no database, no clock).

How a stay is counted in days: per CALENDAR DAY IN THE CAR PARK'S TIMEZONE. A stay covers every local date that
the half-open interval [arrival, departure) touches: arriving Monday 23:00 and leaving Tuesday 01:00 is two days;
leaving at exactly midnight does not start another day. This is what customers of airport parking expect (the
drop-off day and the pick-up day both count), it does not change across a clock change (a 23- or 25-hour local day
is still one day), and it is the same set of days on which the booking holds a space (apps.bookings.capacity).

Day N of the stay costs the rate of the band with the greatest `from_day` <= N, or the tariff's daily rate before
the first band; the total is at least the minimum charge. Amounts are Decimals rounded to pennies.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

PENNY = Decimal("0.01")
_JUST_BEFORE = timedelta(microseconds=1)


@dataclass(frozen=True)
class TariffRule:
    daily_rate: Decimal
    minimum_charge: Decimal = Decimal("0")
    bands: tuple[tuple[int, Decimal], ...] = field(default=())  # (from_day, daily_rate), from_day >= 2

    def rate_for_day(self, day_number: int) -> Decimal:
        rate = self.daily_rate
        for from_day, band_rate in sorted(self.bands):
            if from_day <= day_number:
                rate = band_rate
        return rate


def stay_dates(*, arrival: datetime, departure: datetime, tz: ZoneInfo) -> list[date]:
    """The local calendar dates that the stay [arrival, departure) touches, in order. Both must be aware."""
    if arrival.tzinfo is None or departure.tzinfo is None:
        raise ValueError("arrival and departure must be aware datetimes")
    if departure <= arrival:
        raise ValueError("departure must be after arrival")
    first = arrival.astimezone(tz).date()
    last = (departure - _JUST_BEFORE).astimezone(tz).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def stay_days(*, arrival: datetime, departure: datetime, tz: ZoneInfo) -> int:
    return len(stay_dates(arrival=arrival, departure=departure, tz=tz))


def price_for_days(rule: TariffRule, days: int) -> Decimal:
    total = sum((rule.rate_for_day(n) for n in range(1, days + 1)), Decimal("0"))
    return max(total, rule.minimum_charge).quantize(PENNY, rounding=ROUND_HALF_UP)


def price_stay(rule: TariffRule, *, arrival: datetime, departure: datetime, tz: ZoneInfo) -> Decimal:
    """What the stay costs under `rule`."""
    return price_for_days(rule, stay_days(arrival=arrival, departure=departure, tz=tz))
