"""The price of a stay, table-driven: days are local calendar days at the car park, clock changes included."""

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from apps.bookings.localtime import LocalTimeError, localize, parse_instant
from apps.bookings.pricing import TariffRule, price_stay, stay_dates, stay_days

LONDON = ZoneInfo("Europe/London")
FLAT = TariffRule(daily_rate=Decimal("10.00"))
BANDED = TariffRule(daily_rate=Decimal("15.00"), minimum_charge=Decimal("25.00"), bands=((4, Decimal("10.00")),))
TWO_BANDS = TariffRule(
    daily_rate=Decimal("12.50"), bands=((8, Decimal("5.00")), (3, Decimal("9.99"))), minimum_charge=Decimal("0")
)


def local(text: str) -> datetime:
    return localize(datetime.fromisoformat(text), LONDON)


@pytest.mark.parametrize(
    ("arrival", "departure", "days"),
    [
        ("2026-07-01T10:00", "2026-07-01T18:00", 1),  # same day
        ("2026-07-01T23:00", "2026-07-02T01:00", 2),  # two hours over midnight: two calendar days
        ("2026-07-01T10:00", "2026-07-02T00:00", 1),  # leaving at midnight starts no new day
        ("2026-07-01T10:00", "2026-07-02T00:01", 2),
        ("2026-07-01T00:00", "2026-07-08T00:00", 7),
        ("2026-07-01T05:30", "2026-07-08T22:15", 8),
        # spring forward (Sun 29 Mar 2026, 01:00 -> 02:00): a 23-hour local day is still one day
        ("2026-03-28T22:00", "2026-03-29T22:00", 2),
        ("2026-03-29T00:00", "2026-03-30T00:00", 1),
        ("2026-03-29T00:30", "2026-03-29T03:30", 1),
        # fall back (Sun 25 Oct 2026, 02:00 -> 01:00): a 25-hour local day is still one day
        ("2026-10-25T00:00", "2026-10-26T00:00", 1),
        ("2026-10-24T12:00", "2026-10-26T12:00", 3),
    ],
)
def test_days_are_local_calendar_days(arrival, departure, days):
    assert stay_days(arrival=local(arrival), departure=local(departure), tz=LONDON) == days


def test_days_follow_the_car_parks_zone_not_utc():
    # 23:30 UTC on 1 July is 00:30 on 2 July in London (BST): a stay to 2 July 10:00 London is one day there.
    arrival = datetime(2026, 7, 1, 23, 30, tzinfo=UTC)
    departure = local("2026-07-02T10:00")
    assert stay_days(arrival=arrival, departure=departure, tz=LONDON) == 1
    assert stay_days(arrival=arrival, departure=departure, tz=ZoneInfo("UTC")) == 2


def test_the_25_hour_day_is_one_day_though_longer_than_24_hours():
    arrival, departure = local("2026-10-25T00:00"), local("2026-10-25T23:59")
    assert (departure - arrival).total_seconds() > 24 * 3600
    assert stay_dates(arrival=arrival, departure=departure, tz=LONDON) == [datetime(2026, 10, 25).date()]


@pytest.mark.parametrize(
    ("rule", "days", "price"),
    [
        (FLAT, 1, "10.00"),
        (FLAT, 7, "70.00"),
        (BANDED, 1, "25.00"),  # 15.00 is under the minimum charge
        (BANDED, 2, "30.00"),
        (BANDED, 3, "45.00"),
        (BANDED, 4, "55.00"),  # day 4 onwards at the band's 10.00
        (BANDED, 8, "95.00"),
        (TWO_BANDS, 2, "25.00"),
        (TWO_BANDS, 3, "34.99"),  # bands apply by from_day whatever order they are given in
        (TWO_BANDS, 7, "74.95"),
        (TWO_BANDS, 9, "84.95"),
    ],
)
def test_price_by_days(rule, days, price):
    arrival = local("2026-06-01T09:00")
    departure = local(f"2026-06-{days:02d}T18:00")
    assert price_stay(rule, arrival=arrival, departure=departure, tz=LONDON) == Decimal(price)


@pytest.mark.parametrize(
    ("arrival", "departure", "price"),
    [
        ("2026-03-28T22:00", "2026-03-29T22:00", "30.00"),  # over spring forward: 2 days of 15.00
        ("2026-10-24T12:00", "2026-10-26T12:00", "45.00"),  # over fall back: 3 days
        ("2026-03-25T06:00", "2026-04-01T06:00", "95.00"),  # 8 days: 3 x 15.00 + 5 x 10.00
    ],
)
def test_price_across_clock_changes(arrival, departure, price):
    assert price_stay(BANDED, arrival=local(arrival), departure=local(departure), tz=LONDON) == Decimal(price)


def test_bad_stays_are_refused():
    with pytest.raises(ValueError, match="after arrival"):
        stay_days(arrival=local("2026-06-02T10:00"), departure=local("2026-06-01T10:00"), tz=LONDON)
    with pytest.raises(ValueError, match="aware"):
        stay_days(arrival=datetime(2026, 6, 1), departure=datetime(2026, 6, 2), tz=LONDON)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-21T05:30:00Z", datetime(2026, 11, 21, 5, 30, tzinfo=UTC)),
        ("2026-07-21T05:30:00+01:00", datetime(2026, 7, 21, 4, 30, tzinfo=UTC)),
        ("2026-07-21T05:30", datetime(2026, 7, 21, 4, 30, tzinfo=UTC)),  # local (BST)
        ("2026-12-21T05:30", datetime(2026, 12, 21, 5, 30, tzinfo=UTC)),  # local (GMT)
        ("2026-03-29T02:30", datetime(2026, 3, 29, 1, 30, tzinfo=UTC)),  # just after spring forward
    ],
)
def test_request_times(text, expected):
    assert parse_instant(text, LONDON) == expected


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("2026-03-29T01:30", "nonexistent_local_time"),
        ("2026-10-25T01:30", "ambiguous_local_time"),
        ("tomorrow", "invalid_datetime"),
        ("2026-13-01T00:00", "invalid_datetime"),
    ],
)
def test_request_times_refused(text, code):
    with pytest.raises(LocalTimeError) as refused:
        parse_instant(text, LONDON)
    assert refused.value.code == code
