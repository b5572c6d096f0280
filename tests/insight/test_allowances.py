"""An accepted overbooking allowance is read by the products' allocation: a channel at its limit (its share of a
product, or the car park's capacity) is refused 409 until staff accept an allowance for that day, then sells up to
the allowance and no further; other channels, and other days, are not affected."""

import json
from datetime import datetime, time, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from apps.agents.services import api_token_create
from apps.bookings import selectors
from apps.bookings.localtime import localize
from apps.bookings.models import Booking
from apps.carparks.models import CarPark
from apps.insight.models import Forecast
from apps.insight.overbooking import overbooking_allowance_accept
from apps.products.models import ChannelAllocation, Product
from apps.products.selectors import forget_catalogue
from tests.bookings.conftest import LONDON

pytestmark = pytest.mark.django_db(transaction=True)

DAY = (timezone.now() + timedelta(days=20)).astimezone(LONDON).date()


def client_for(agent_code: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {api_token_create(agent_code=agent_code)}")


def book(client: Client, ref: str, product: str, day=DAY) -> int:
    body = {
        "agent_ref": ref,
        "carpark": "LHR-T5",
        "arrival": f"{day}T08:00",
        "departure": f"{day}T20:00",
        "customer": {"name": "Jane Smith"},
        "vehicles": [{"registration": f"AL{ref[-1]}{len(ref)}XYZ"}],
        "product": product,
    }
    answer = client.post("/api/v1/bookings", json.dumps(body), content_type="application/json")
    assert answer.status_code in (201, 409), answer.content
    return answer.status_code


def spaces_left(client: Client, product: str) -> int:
    query = {"carpark": "LHR-T5", "arrival": f"{DAY}T08:00", "departure": f"{DAY}T20:00"}
    products = client.get("/api/v1/availability", query).json()["products"]
    return next(p["spaces_left"] for p in products if p["code"] == product)


def accept(carpark: CarPark, channel: str, spaces: int) -> None:
    """Through the insight service staff use (the page's one click), from a forecast recommending it."""
    forecast = Forecast.objects.create(
        carpark=carpark,
        made_at=timezone.now(),
        risk=0.005,
        recommendations=[
            {"date": DAY.isoformat(), "channel": ch, "spaces": 5, "show": 0.1, "base_mean": 0.0, "base_var": 0.0}
            for ch in ("skypark", "holidayx", "web")
        ],
    )
    boss, _ = get_user_model().objects.get_or_create(username="boss")
    overbooking_allowance_accept(
        carpark_id=carpark.pk, day=DAY, channel=channel, spaces=spaces, forecast_id=forecast.pk, actor=boss
    )


def test_an_accepted_allowance_lets_the_channel_sell_beyond_its_share_and_capacity(demo_world):
    carpark = CarPark.objects.get(code="LHR-T5")
    mg = Product.objects.get(carpark=carpark, code="MG")
    ChannelAllocation.objects.create(product=mg, channel="skypark", spaces=1)
    forget_catalogue(carpark.pk)
    skypark, holidayx = client_for("skypark"), client_for("holidayx")

    # the agent's share of MG used up: refused, until an allowance for that day and channel is accepted
    assert book(skypark, "SP-1", "MG") == 201
    assert book(skypark, "SP-2", "MG") == 409
    assert spaces_left(skypark, "MG") == 0
    accept(carpark, "skypark", 2)
    assert spaces_left(skypark, "MG") == 2
    assert book(skypark, "SP-2", "MG") == 201
    assert book(skypark, "SP-3", "MG") == 201
    assert book(skypark, "SP-4", "MG") == 409  # up to the allowance, no further
    assert book(skypark, "SP-5", "MG", day=DAY + timedelta(days=1)) == 201  # another day: its share was free
    assert book(skypark, "SP-6", "MG", day=DAY + timedelta(days=1)) == 409  # ... and has no allowance
    assert not Booking.objects.filter(agent_ref__startswith="SP-", overbooked=True).exists()

    # the car park at capacity: refused for every channel; an allowance lifts it for its own channel only
    CarPark.objects.filter(pk=carpark.pk).update(capacity=3)  # DAY holds 3 (SP-1..3)
    carpark.refresh_from_db()
    forget_catalogue(carpark.pk)
    assert book(holidayx, "HX-1", "PR") == 409
    accept(carpark, "holidayx", 1)
    assert spaces_left(holidayx, "PR") == 1
    assert book(holidayx, "HX-1", "PR") == 201
    assert book(holidayx, "HX-2", "PR") == 409
    # allowances do not add up: each channel sells to capacity + its own (the car park holds 4; skypark's 2 -> 5)
    assert book(skypark, "SP-7", "PR") == 201
    assert book(skypark, "SP-8", "PR") == 409
    accept(carpark, "holidayx", 0)  # withdrawn: nothing more oversells
    assert spaces_left(holidayx, "PR") == 0

    # the websites' quote counts theirs alike (the car park holds 5 of 3)
    stay = {"carpark": carpark, "arrival": localize(datetime.combine(DAY, time(8)), LONDON)}
    stay["departure"] = stay["arrival"] + timedelta(hours=12)
    assert selectors.quote(**stay).spaces_left == 0
    accept(carpark, "web", 3)
    assert selectors.quote(**stay).spaces_left == 1
