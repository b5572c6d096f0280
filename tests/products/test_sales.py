"""Selling products in the demo world (seed_demo's contract): the agents' API by product, fare and extras; the
channel's share and the product's spaces (409 naming the product), stop-sell, extras' stock, promo codes under a
race, email bookings overbooked against the agent's share, amendments' fee, the breakdown against the ledger, and
the calendar's overlaps and CSV. The API's services run on other threads: these tests commit."""

import json
import threading
import time
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum
from django.test import Client
from django.utils import timezone

from apps.accounting import chart
from apps.accounting.models import LedgerLine
from apps.agents.models import Agent
from apps.agents.services import api_token_create
from apps.bookings import services
from apps.bookings.errors import BookingInvalid, NoCapacity
from apps.bookings.localtime import localize
from apps.bookings.models import Booking
from apps.carparks.models import Brand, CarPark
from apps.products import calendar
from apps.products.errors import CalendarConflict
from apps.products.models import ChannelAllocation, Extra, Fare, PriceSeason, Product, ProductDay, PromoCode
from apps.products.selectors import forget_catalogue
from tests.bookings.conftest import LONDON
from tests.mail.conftest import deliver
from tests.mail.messages import CSV_HEADER, labels_text, message

pytestmark = pytest.mark.django_db(transaction=True)

DAY = (timezone.now() + timedelta(days=40)).astimezone(LONDON).date()
ARRIVAL, DEPARTURE = f"{DAY}T08:00", f"{DAY + timedelta(days=6)}T20:00"  # a 7-day stay


def client_for(agent_code: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {api_token_create(agent_code=agent_code)}")


def book(client: Client, ref: str, **extra):
    body = {
        "agent_ref": ref,
        "carpark": "LHR-T5",
        "arrival": ARRIVAL,
        "departure": DEPARTURE,
        "customer": {"name": "Jane Smith"},
        "vehicles": [{"registration": f"AB{len(ref)}{ref[-2:]}CDE"}],
        **extra,
    }
    return client.post("/api/v1/bookings", json.dumps(body), content_type="application/json")


def changed(carpark_code: str = "LHR-T5") -> None:
    forget_catalogue(CarPark.objects.get(code=carpark_code).pk)


def test_availability_lists_products_and_fares(demo_world):
    skypark = client_for("skypark")
    q = skypark.get("/api/v1/availability", {"carpark": "LHR-T5", "arrival": ARRIVAL, "departure": DEPARTURE}).json()
    assert [(p["code"], p["name"], p["spaces_left"]) for p in q["products"]] == [
        ("PR", "Park and Ride", 360),
        ("MG", "Meet and Greet", 40),
    ]
    fares = {p["code"]: {f["code"]: (f["price"], f["refundable"]) for f in p["fares"]} for p in q["products"]}
    # PR: the car park's tariff (15 a day, 10 from day 4); saver -10%. MG: its calendar's 25 a day.
    assert fares == {
        "PR": {"flex": ("85.00", True), "saver": ("76.50", False)},
        "MG": {"flex": ("175.00", True), "saver": ("157.50", False)},
    }
    assert (q["available"], q["spaces_left"], q["price"], q["days"]) == (True, 360, "85.00", 7)  # PR flex


def test_book_by_product_within_each_agents_share(demo_world):
    mg = Product.objects.get(carpark__code="LHR-T5", code="MG")
    ChannelAllocation.objects.create(product=mg, channel="skypark", spaces=1)
    changed()
    skypark, holidayx = client_for("skypark"), client_for("holidayx")
    first = book(skypark, "SP-1", product="MG", fare="saver", extras=[{"code": "EV", "quantity": 1}])
    assert first.status_code == 201, first.content
    b = first.json()
    assert (b["product"], b["fare"], b["extras"]) == ("MG", "saver", [{"code": "EV", "quantity": 1, "price": "56.00"}])
    assert b["price"] == "213.50"  # 157.50 + EV 8.00 x 7 days
    full = book(skypark, "SP-2", product="mg")
    assert full.status_code == 409 and full.json()["error"] == "no_capacity", full.content
    assert "Meet and Greet (MG)" in full.json()["detail"] and "share" in full.json()["detail"]
    assert book(holidayx, "HX-1", product="MG").status_code == 201  # another agent still has spaces
    q = skypark.get("/api/v1/availability", {"carpark": "LHR-T5", "arrival": ARRIVAL, "departure": DEPARTURE})
    assert {p["code"]: p["spaces_left"] for p in q.json()["products"]} == {"PR": 360, "MG": 0}


def test_older_clients_get_the_agents_defaults_and_unknown_choices_are_named(demo_world):
    skypark = client_for("skypark")
    plain = book(skypark, "SP-OLD")
    assert plain.status_code == 201 and (plain.json()["product"], plain.json()["fare"]) == ("PR", "flex")
    for field, extra, allowed in [
        ("product", {"product": "VIP"}, ["PR", "MG"]),
        ("fare", {"product": "MG", "fare": "gold"}, ["flex", "saver"]),
        ("extras", {"extras": [{"code": "WASH", "quantity": 1}]}, ["EV"]),
    ]:
        refused = book(skypark, f"SP-{field}", **extra)
        assert refused.status_code == 422, refused.content
        payload = refused.json()
        assert payload["error"] == "invalid" and payload["detail"][0]["loc"][-1] == field
        assert payload["detail"][0]["allowed"] == allowed
    Agent.objects.filter(code="skypark").update(product_codes="PR")
    mine_only = client_for("skypark")  # a new token: the owner as it is now
    assert book(mine_only, "SP-MG", product="MG").json()["detail"][0]["allowed"] == ["PR"]


def test_amendment_reports_the_price_difference_and_fee(demo_world):
    Fare.objects.filter(product__code="MG", code="flex").update(amend_fee=Decimal("5.00"))
    changed()
    skypark = client_for("skypark")
    ref = book(skypark, "SP-AM", product="MG").json()["reference"]
    later = f"{DAY + timedelta(days=7)}T20:00"  # one more day: 8 days, from day 8 at 20.00
    amended = skypark.patch(
        f"/api/v1/bookings/{ref}", json.dumps({"departure": later}), content_type="application/json"
    )
    assert amended.status_code == 200, amended.content
    assert amended.json()["amendment"] == {
        "previous_price": "175.00",
        "price": "200.00",
        "price_difference": "25.00",
        "fee": "5.00",
    }
    saver = skypark.patch(f"/api/v1/bookings/{ref}", json.dumps({"fare": "saver"}), content_type="application/json")
    assert saver.json()["fare"] == "saver" and saver.json()["amendment"]["fee"] == "0.00"


def test_email_bookings_are_never_refused_but_count_against_the_share(demo_world):
    mg = Product.objects.get(carpark__code="LHR-T5", code="MG")
    ChannelAllocation.objects.create(product=mg, channel="legacy80", spaces=1)
    changed()
    agent, carpark = Agent.objects.get(code="legacy80"), CarPark.objects.get(code="LHR-T5")
    stay = {"arrival": localize_text(ARRIVAL), "departure": localize_text(DEPARTURE)}
    made = [
        services.booking_create(
            carpark=carpark,
            customer_name="J",
            vehicles=[f"EM{n}ABC"],
            source="email",
            agent=agent,
            agent_ref=f"L80-{n}",
            product="MG",
            allow_overbooking=True,
            **stay,
        )
        for n in range(2)
    ]
    assert [b.overbooked for b in made] == [False, True]
    assert ProductDay.objects.get(product=mg, date=DAY, channel="legacy80").held == 2


def localize_text(text: str) -> datetime:
    return localize(datetime.fromisoformat(text), LONDON)


def test_product_spaces_stop_sell_and_extras_stock(demo_world):
    Product.objects.filter(code="MG").update(spaces=1)
    Extra.objects.filter(code="EV").update(stock_per_day=1)
    changed()
    brand, carpark = Brand.objects.get(code="parkgate-demo"), CarPark.objects.get(code="LHR-T5")
    stay = {"carpark": carpark, "arrival": localize_text(ARRIVAL), "departure": localize_text(DEPARTURE)}
    web = {"source": "web", "brand": brand, "customer_email": "j@example.com", **stay}
    services.booking_create(customer_name="A", vehicles=["AA11AAA"], product="MG", extras=[{"code": "EV"}], **web)
    with pytest.raises(NoCapacity, match=r"Meet and Greet \(MG\) at Heathrow Terminal 5 is full"):
        services.booking_create(customer_name="B", vehicles=["BB11BBB"], product="MG", **web)
    with pytest.raises(BookingInvalid, match="EV charging is sold out") as sold_out:
        services.booking_create(customer_name="C", vehicles=["CC11CCC"], extras=[{"code": "EV"}], **web)
    assert sold_out.value.field == "extras"
    pr = Product.objects.get(carpark=carpark, code="PR")
    calendar.stop_sell_set(product=pr, day=DAY + timedelta(days=2), channel="web", stopped=True)
    with pytest.raises(NoCapacity, match=r"Park and Ride \(PR\) .* is not on sale"):
        services.booking_create(customer_name="D", vehicles=["DD11DDD"], product="PR", **web)
    assert book(client_for("skypark"), "SP-STOP").status_code == 201  # stopped for the website only


def test_promo_code_limit_holds_under_a_race_and_refusals_say_why(demo_world):
    PromoCode.objects.filter(code="WELCOME10").update(max_uses=3, min_days=2)
    brand, other = Brand.objects.get(code="parkgate-demo"), Brand.objects.get(code="skyline")
    carpark = CarPark.objects.get(code="LHR-T5")
    stay = {"carpark": carpark, "arrival": localize_text(ARRIVAL), "departure": localize_text(DEPARTURE)}
    with pytest.raises(BookingInvalid, match="WELCOME10 is not valid on this site"):
        services.booking_create(
            source="web", brand=other, customer_name="X", vehicles=["XX1"], promo_code="welcome10", **stay
        )
    short = {**stay, "departure": stay["arrival"] + timedelta(hours=2)}
    with pytest.raises(BookingInvalid, match="at least 2 days"):
        services.booking_create(
            source="web", brand=brand, customer_name="X", vehicles=["XX1"], promo_code="WELCOME10", **short
        )
    results, start = [], threading.Barrier(6)

    def attempt(n: int) -> None:
        start.wait()
        try:
            services.booking_create(
                source="web", brand=brand, customer_name=f"R{n}", vehicles=[f"RC{n}ABC"], promo_code="WELCOME10", **stay
            )
            results.append("ok")
        except BookingInvalid as exc:
            results.append(str(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["WELCOME10 has been used up"] * 3 + ["ok"] * 3
    assert PromoCode.objects.get(code="WELCOME10").uses == 3


def test_the_breakdown_shown_is_what_the_ledger_posts(demo_world):
    brand, carpark = Brand.objects.get(code="parkgate-demo"), CarPark.objects.get(code="LHR-T5")
    booking = services.booking_create(
        carpark=carpark,
        arrival=localize_text(ARRIVAL),
        departure=localize_text(DEPARTURE),
        source="web",
        brand=brand,
        customer_name="Jane",
        vehicles=["AB12CDE"],
        product="MG",
        fare="saver",
        extras=[{"code": "EV", "quantity": 1}],
        promo_code="WELCOME10",
    )
    shown = booking.price_breakdown
    assert [d["amount"] for d in shown["days"]] == ["22.50"] * 7 and shown["stay"] == "157.50"
    assert shown["discount"] == {"label": "WELCOME10 (10% off)", "amount": "15.75"}
    assert shown["total"] == "197.75" == f"{booking.price:.2f}"  # 157.50 + 56.00 - 15.75
    sold = LedgerLine.objects.filter(booking=booking, account__code__in=[chart.PARKING_REVENUE, chart.OUTPUT_VAT])
    assert -sold.aggregate(s=Sum("amount"))["s"] == Decimal(shown["total"])  # net + VAT: the price is VAT-inclusive


def test_calendar_overlaps_are_refused_naming_the_conflict_and_csv_round_trips(demo_world):
    carpark = CarPark.objects.get(code="LHR-T5")
    mg = Product.objects.get(carpark=carpark, code="MG")
    with pytest.raises(CalendarConflict, match=r"MG all 2027-01-01\.\.2027-01-31 overlaps MG all 2026-01-01\.\.2030"):
        calendar.price_season_create(
            product=mg, starts=date(2027, 1, 1), ends=date(2027, 1, 31), daily_rate=Decimal(30)
        )
    with pytest.raises(ValueError, match="amounts are 0 or more"):  # the same checks as changing a range
        calendar.price_season_create(
            product=mg, starts=date(2027, 1, 1), ends=date(2027, 1, 31), daily_rate=Decimal(-1), channel="web"
        )
    calendar.price_season_create(
        product=mg, starts=date(2027, 1, 1), ends=date(2027, 1, 31), daily_rate=Decimal(30), channel="web"
    )
    exported = calendar.calendar_export(carpark=carpark)
    assert calendar.calendar_import(carpark=carpark, text=exported) == 2
    assert calendar.calendar_export(carpark=carpark) == exported
    clash = exported + "MG,,web,2027-01-31,2027-02-10,31.00,0.00,\n"
    with pytest.raises(
        CalendarConflict, match=r"MG web 2027-01-31\.\.2027-02-10 overlaps MG web 2027-01-01\.\.2027-01-31"
    ):
        calendar.calendar_import(carpark=carpark, text=clash)
    with pytest.raises(ValueError, match="line 2: unknown product 'XX'"):
        calendar.calendar_import(
            carpark=carpark, text="product,brand,channel,starts,ends,daily_rate\nXX,,,2027-01-01,2027-01-02,1\n"
        )
    assert PriceSeason.objects.filter(product=mg).count() == 2  # a refused import changes nothing


def test_a_years_calendar_of_five_products_imports_quickly(demo_world):
    carpark = CarPark.objects.get(code="LHR-T5")
    for n in range(3):
        Product.objects.create(carpark=carpark, code=f"P{n}", name=f"Product {n}", spaces=1)
    first = date(2027, 1, 1)
    rows = ["product,brand,channel,starts,ends,daily_rate,minimum_charge,bands"] + [
        f"{code},,,{first + timedelta(days=d)},{first + timedelta(days=d)},{10 + d % 7}.00,0.00,4:9.00"
        for code in ("PR", "MG", "P0", "P1", "P2")
        for d in range(365)
    ]
    started = time.monotonic()
    assert calendar.calendar_import(carpark=carpark, text="\n".join(rows)) == 5 * 365
    assert time.monotonic() - started < 5  # the bound on a loaded machine (figures: docs/performance.md)


def test_email_formats_map_a_product_or_get_the_agents_default(demo_world):
    skypark, holidayx = Agent.objects.get(code="skypark"), Agent.objects.get(code="holidayx")
    deliver(skypark, message(labels_text(ref="SPX-MG") + "Product: MG\n"))
    rows = CSV_HEADER.strip() + ",product\nNEW,HX-1,LHR-T5,2026-11-21 05:30,2026-11-28 22:15,Jo,,,AB1,,,MG\n"
    rows += "NEW,HX-2,LHR-T5,2026-11-21 05:30,2026-11-28 22:15,Al,,,AB2,,,\n"
    deliver(holidayx, message("See attached.", attachments=[(rows.encode(), "text", "csv", "b.csv")]))
    sold = dict(Booking.objects.values_list("agent_ref", "product__code"))
    assert sold == {"SPX-MG": "MG", "HX-1": "MG", "HX-2": "PR"}
    assert set(Booking.objects.values_list("fare__code", flat=True)) == {"flex"}


def test_a_stop_sell_is_an_allocation_event_for_the_agents_webhooks(demo_world):
    from apps.webhooks.models import Endpoint, Event

    agent = Agent.objects.order_by("pk").first()
    Endpoint.objects.create(agent=agent, url="https://hooks.example.com/x", events=["allocation.stop_sell"], secret="s")
    mg = Product.objects.get(carpark__code="LHR-T5", code="MG")
    day = date(2027, 7, 10)
    calendar.stop_sell_set(product=mg, day=day, channel=agent.code, stopped=True)
    calendar.stop_sell_set(product=mg, day=day, channel=agent.code, stopped=True)  # no change: no event
    calendar.stop_sell_set(product=mg, day=day, channel=agent.code, stopped=False)
    events = list(Event.objects.filter(type="allocation.stop_sell").order_by("pk").values("agent_id", "data"))
    assert [e["data"]["stopped"] for e in events] == [True, False]
    assert events[0] == {
        "agent_id": agent.pk,
        "data": {"carpark": "LHR-T5", "date": "2027-07-10", "product": "MG", "channel": agent.code, "stopped": True},
    }
