"""The price of a stay of a product (apps.products.pricing): each rule of the calendar, table-driven, plus the
fares' cancellation terms (apps.products.fares). Pure functions: no database."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest

from apps.bookings.pricing import TariffRule
from apps.products.fares import FareTerms, cancellation_terms
from apps.products.pricing import Calendar, ExtraItem, FarePrice, Promo, Rule, Season, parse_bands, price_stay

SAT = date(2027, 6, 5)  # a Saturday
SUMMER = Season(date(2027, 6, 1), date(2027, 8, 31), D("20.00"), D("0"), ((4, D("12.00")),))
WEB_SUMMER = Season(date(2027, 6, 1), date(2027, 8, 31), D("18.00"), channel="web")
BRAND_SUMMER = Season(date(2027, 6, 1), date(2027, 8, 31), D("17.00"), brand_id=7)
BRAND_WEB_SUMMER = Season(date(2027, 6, 1), date(2027, 8, 31), D("16.00"), brand_id=7, channel="web")
TARIFF = TariffRule(D("15.00"), D("25.00"), ((4, D("10.00")),))
RULES = (
    Rule("weekday", 6, D("10")),  # Saturdays +10%
    Rule("lead_time", 30, D("-10")),
    Rule("lead_time", 60, D("-20")),
    Rule("occupancy", 70, D("10")),
    Rule("occupancy", 85, D("20")),
    Rule("occupancy", 95, D("50")),
)


def days(first: date, n: int) -> list[date]:
    return [first + timedelta(days=i) for i in range(n)]


# (case, calendar, fare %, first day, days, brand, channel, booked days ahead, occupancy {day index: %},
#  expected day amounts, expected stay total, expected rule words on the first day)
CASES = [
    (
        "tariff when no range",
        Calendar(tariff=TARIFF),
        0,
        date(2027, 3, 1),
        5,
        None,
        "web",
        0,
        {},
        ["15.00", "15.00", "15.00", "10.00", "10.00"],
        "65.00",
        ["tariff"],
    ),
    (
        "tariff minimum charge",
        Calendar(tariff=TARIFF),
        0,
        date(2027, 3, 1),
        1,
        None,
        "web",
        0,
        {},
        ["15.00"],
        "25.00",
        ["tariff"],
    ),
    (
        "range with its length-of-stay band",
        Calendar((SUMMER,)),
        0,
        date(2027, 6, 1),
        5,
        None,
        "skypark",
        0,
        {},
        ["20.00", "20.00", "20.00", "12.00", "12.00"],
        "84.00",
        ["01 Jun to 31 Aug 2027"],
    ),
    (
        "range ends: tariff after",
        Calendar((SUMMER,), tariff=TARIFF),
        0,
        date(2027, 8, 30),
        3,
        None,
        "web",
        0,
        {},
        ["20.00", "20.00", "15.00"],
        "55.00",
        ["01 Jun to 31 Aug 2027"],
    ),
    (
        "channel range beats the general",
        Calendar((SUMMER, WEB_SUMMER)),
        0,
        date(2027, 6, 1),
        1,
        None,
        "web",
        0,
        {},
        ["18.00"],
        "18.00",
        None,
    ),
    (
        "another channel gets the general",
        Calendar((SUMMER, WEB_SUMMER)),
        0,
        date(2027, 6, 1),
        1,
        None,
        "skypark",
        0,
        {},
        ["20.00"],
        "20.00",
        None,
    ),
    (
        "brand range beats channel range",
        Calendar((SUMMER, WEB_SUMMER, BRAND_SUMMER)),
        0,
        date(2027, 6, 1),
        1,
        7,
        "web",
        0,
        {},
        ["17.00"],
        "17.00",
        None,
    ),
    (
        "brand and channel beats all",
        Calendar((SUMMER, WEB_SUMMER, BRAND_SUMMER, BRAND_WEB_SUMMER)),
        0,
        date(2027, 6, 1),
        1,
        7,
        "web",
        0,
        {},
        ["16.00"],
        "16.00",
        None,
    ),
    (
        "other brand: not its range",
        Calendar((SUMMER, BRAND_SUMMER)),
        0,
        date(2027, 6, 1),
        1,
        8,
        "web",
        0,
        {},
        ["20.00"],
        "20.00",
        None,
    ),
    (
        "Saturday +10%",
        Calendar((SUMMER,), RULES),
        0,
        SAT - timedelta(days=1),
        2,
        None,
        "web",
        0,
        {},
        ["20.00", "22.00"],
        "42.00",
        None,
    ),
    (
        "booked 29 days ahead: no lead rule",
        Calendar((SUMMER,), RULES),
        0,
        date(2027, 6, 1),
        1,
        None,
        "web",
        29,
        {},
        ["20.00"],
        "20.00",
        ["01 Jun to 31 Aug 2027"],
    ),
    (
        "booked 30 days ahead -10%",
        Calendar((SUMMER,), RULES),
        0,
        date(2027, 6, 1),
        1,
        None,
        "web",
        30,
        {},
        ["18.00"],
        "18.00",
        ["01 Jun to 31 Aug 2027", "booked 30+ days ahead -10%"],
    ),
    (
        "booked 90 days ahead: the 60-day rule",
        Calendar((SUMMER,), RULES),
        0,
        date(2027, 6, 1),
        1,
        None,
        "web",
        90,
        {},
        ["16.00"],
        "16.00",
        None,
    ),
    (
        "occupancy bands 69/70/85/95%",
        Calendar((SUMMER,), RULES),
        0,
        date(2027, 6, 1),
        4,
        None,
        "web",
        0,
        {0: 69, 1: 70, 2: 90, 3: 95},
        ["20.00", "22.00", "24.00", "18.00"],
        "84.00",
        None,
    ),  # day 4: band 12.00 +50%
    (
        "saver fare -10%",
        Calendar((SUMMER,)),
        -10,
        date(2027, 6, 1),
        2,
        None,
        "web",
        0,
        {},
        ["18.00", "18.00"],
        "36.00",
        ["01 Jun to 31 Aug 2027", "saver fare -10%"],
    ),
    (
        "all compound, rounded per day",
        Calendar((SUMMER,), RULES),
        -10,
        SAT,
        1,
        None,
        "web",
        30,
        {0: 85},
        ["21.38"],
        "21.38",
        ["01 Jun to 31 Aug 2027", "Saturday +10%", "booked 30+ days ahead -10%", "85%+ sold +20%", "saver fare -10%"],
    ),  # 20 x 1.1 x 0.9 x 1.2 x 0.9 = 21.384
]


@pytest.mark.parametrize(
    ("case", "calendar", "fare", "first", "n", "brand", "channel", "ahead", "occupancy", "amounts", "stay", "why"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_pricing_rules(case, calendar, fare, first, n, brand, channel, ahead, occupancy, amounts, stay, why):
    dates = days(first, n)
    result = price_stay(
        calendar,
        FarePrice("saver" if fare else "flex", D(fare)),
        dates=dates,
        brand_id=brand,
        channel=channel,
        booked_on=first - timedelta(days=ahead),
        occupancy={dates[i]: D(p) for i, p in occupancy.items()},
    )
    assert [f"{d.amount:.2f}" for d in result.days] == amounts
    assert f"{result.stay:.2f}" == f"{result.total:.2f}" == stay
    if why is not None:
        assert list(result.days[0].rules) == why


def test_no_rate_for_a_day_is_no_price():
    assert (
        price_stay(
            Calendar((SUMMER,)),
            FarePrice("flex"),
            dates=days(date(2027, 8, 31), 2),
            brand_id=None,
            channel="web",
            booked_on=date(2027, 1, 1),
            occupancy={},
        )
        is None
    )


def test_extras_and_promo_codes():
    stay = {
        "dates": days(date(2027, 6, 1), 3),
        "brand_id": None,
        "channel": "web",
        "booked_on": date(2027, 6, 1),
        "occupancy": {},
    }
    ev = ExtraItem("EV", "EV charging", D("5.00"), per_day=True, quantity=1)
    wash = ExtraItem("WASH", "Car wash", D("12.50"), per_day=False, quantity=2)
    result = price_stay(
        Calendar((SUMMER,)), FarePrice("flex"), extras=(ev, wash), promo=Promo("WELCOME10", True, D("10")), **stay
    )
    assert [(x.label, f"{x.amount}") for x in result.extras] == [
        ("EV charging x 1 x 3 days", "15.00"),
        ("Car wash x 2", "25.00"),
    ]
    assert (result.stay, result.discount.amount, result.total) == (D("60.00"), D("6.00"), D("94.00"))  # off the stay
    capped = price_stay(Calendar((SUMMER,)), FarePrice("flex"), promo=Promo("BIG", False, D("500")), **stay)
    assert (capped.discount.amount, capped.total) == (D("60.00"), D("0.00"))
    shown = result.as_dict()
    assert shown["total"] == "94.00" and shown["days"][0] == {
        "date": "2027-06-01",
        "base": "20.00",
        "rules": ["01 Jun to 31 Aug 2027"],
        "amount": "20.00",
    }


@pytest.mark.parametrize(
    ("text", "bands"),
    [("", ()), ("4:10.00 8:8", ((4, D("10.00")), (8, D("8")))), ("8:8,4:10", ((4, D("10")), (8, D("8"))))],
)
def test_bands_parse(text, bands):
    assert parse_bands(text) == bands


@pytest.mark.parametrize("text", ["1:5", "x:5", "4", "4:-1", "4:5 4:6"])
def test_bad_bands_refused(text):
    with pytest.raises(ValueError):
        parse_bands(text)


ARRIVAL = datetime(2027, 6, 10, 8, 0, tzinfo=UTC)
FLEX = FareTerms("flex", refundable=True, refund_cutoff_hours=24)
FLEX_FEE = FareTerms("flex", refundable=True, refund_cutoff_hours=24, cancellation_fee=D("5.00"))
SAVER = FareTerms("saver", refundable=False)


@pytest.mark.parametrize(
    ("terms", "before", "refund", "fee", "now"),
    [
        (FLEX, timedelta(hours=25), "80.00", "0", True),
        (FLEX, timedelta(hours=24), "0", "80.00", False),  # the cut-off itself is too late
        (FLEX_FEE, timedelta(days=3), "75.00", "5.00", True),
        (SAVER, timedelta(days=30), "0", "80.00", False),
    ],
)
def test_cancellation_terms(terms, before, refund, fee, now):
    result = cancellation_terms(terms, paid=D("80.00"), arrival=ARRIVAL, at=ARRIVAL - before)
    assert (result.refund_due, result.fee, result.refundable_now) == (D(refund), D(fee), now)
    assert result.cutoff == (None if not terms.refundable else ARRIVAL - timedelta(hours=24))
    assert SAVER.describe() == "Not refundable" and FLEX.describe() == "Refundable until 24 h before arrival"


def test_the_window_of_sorted_ranges_prices_as_a_full_scan():
    daily = tuple(Season(date(2027, 1, 1) + timedelta(days=n), date(2027, 1, 1) + timedelta(days=n), D(10 + n % 7))
                  for n in range(365))  # fmt: skip
    long = Season(date(2026, 12, 1), date(2027, 12, 31), D("99"), channel="web")  # longer: a wider window
    seasons = tuple(sorted((*daily, long), key=lambda s: s.starts))
    stay = {"dates": days(date(2027, 6, 28), 7), "brand_id": None, "booked_on": date(2027, 1, 1), "occupancy": {}}
    for channel in ("web", "skypark"):
        scanned = price_stay(Calendar(seasons), FarePrice("flex"), channel=channel, **stay)
        windowed = price_stay(Calendar(seasons, span=395), FarePrice("flex"), channel=channel, **stay)
        assert scanned == windowed and windowed.total == (D("693.00") if channel == "web" else D("91.00"))
