"""A small world for booking tests: one brand, two car parks (one tiny), tariffs, an agent with an API token."""

import html
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from apps.agents.models import Agent
from apps.bookings.localtime import localize
from apps.carparks.models import Brand, BrandDomain, CarPark, Tariff, TariffBand

LONDON = ZoneInfo("Europe/London")


def local(text: str) -> datetime:
    """A wall-clock time in London as an aware UTC datetime."""
    return localize(datetime.fromisoformat(text), LONDON)


def hidden_inputs(page: str) -> dict[str, str]:
    """A page's hidden form fields by name, as a browser would send them back."""
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)
    return {name: html.unescape(value) for name, value in found}


@dataclass
class World:
    brand: Brand
    other_brand: Brand
    carpark: CarPark
    tiny: CarPark
    agent: Agent
    other_agent: Agent


def make_world() -> World:
    brand = Brand.objects.create(
        code="tb", name="Test Brand", primary_colour="#0f766e", logo_text="TB", base_url="https://tb.parkgate.test"
    )
    BrandDomain.objects.create(brand=brand, host="tb.parkgate.test")
    other = Brand.objects.create(code="ob", name="Other Brand", logo_text="OB", base_url="https://ob.parkgate.test")
    BrandDomain.objects.create(brand=other, host="ob.parkgate.test")
    carpark = CarPark.objects.create(code="TST-1", name="Test Park", capacity=50)
    tiny = CarPark.objects.create(code="TINY", name="Tiny Park", capacity=2)
    carpark.brands.set([brand])
    tiny.brands.set([brand, other])
    tariff = Tariff.objects.create(carpark=carpark, daily_rate=Decimal("15.00"), minimum_charge=Decimal("25.00"))
    TariffBand.objects.create(tariff=tariff, from_day=4, daily_rate=Decimal("10.00"))
    Tariff.objects.create(carpark=carpark, brand=brand, daily_rate=Decimal("12.00"))
    Tariff.objects.create(carpark=tiny, daily_rate=Decimal("5.00"))
    agent = Agent.objects.create(code="tagent", name="Test Agent", commission_rate=Decimal("0.15"))
    agent.carparks.set([carpark, tiny])
    other_agent = Agent.objects.create(code="oagent", name="Other Agent", commission_rate=Decimal("0.10"))
    other_agent.carparks.set([tiny])
    return World(brand, other, carpark, tiny, agent, other_agent)


@pytest.fixture
def world(db) -> World:
    return make_world()


@pytest.fixture
def committed_world(transactional_db) -> World:
    """The same world committed, for tests whose code runs on other connections (threads, a server)."""
    return make_world()


def deliver_confirmation(booking) -> None:
    """Deliver a booking's confirmation here and now, as the `customers.deliver` job does (its outbox row written
    as customer_message_send writes it, but with no job queued for a running worker to race us)."""
    from apps.core.jobs import run_job
    from apps.customers.models import CustomerMessage

    message, _ = CustomerMessage.objects.get_or_create(
        booking=booking, channel="email", event="confirmed", kind="confirmed"
    )
    run_job("customers.deliver", {"message_id": message.pk})
