from decimal import Decimal

import pytest

from apps.accounting import chart
from apps.accounting.models import CarParkRates
from apps.agents.models import Agent
from apps.carparks.models import CarPark


@pytest.fixture
def chart_of_accounts(db):
    """The chart as the migrations leave it (the ledger makes it when missing): a transactional test that ran before
    on this worker emptied every table, the migrations' rows with them."""
    chart.ensure()


@pytest.fixture
def carpark(db):
    carpark = CarPark.objects.create(code="ACC-1", name="Accounting Test", capacity=100, currency="GBP", grace_min=60)
    CarParkRates.objects.create(carpark=carpark, overstay_rate=Decimal("12.50"), overstay_unit="hour")
    return carpark


@pytest.fixture
def euro_carpark(db):
    return CarPark.objects.create(
        code="ACC-EU", name="Euro Test", capacity=100, currency="EUR", timezone="Europe/Paris"
    )


@pytest.fixture
def agent(db, carpark):
    agent = Agent.objects.create(code="skyacc", name="Sky Accounting", commission_rate=Decimal("0.15"))
    agent.carparks.add(carpark)
    return agent
