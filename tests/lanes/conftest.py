"""Fixtures for the lane controller tests: a small committed world (two car parks with lanes), devices, bookings."""

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connections

from apps.access import services
from apps.bookings.models import Booking, Customer, Vehicle
from apps.carparks.models import CarPark, Lane
from apps.core import plates


def now() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
def world(transactional_db):
    """Car park TST1 (lanes IN, IN2 entry; OUT exit) and TST2 (lanes X-IN, X-OUT), committed."""
    return build_world()


@pytest.fixture
def world_db(db):
    """The same world inside the test's transaction (service-level tests, no server)."""
    return build_world()


def build_world() -> dict:
    one = CarPark.objects.create(code="TST1", name="Test One", capacity=500)
    two = CarPark.objects.create(code="TST2", name="Test Two", capacity=500)
    for carpark, lanes in (
        (one, {"IN": "entry", "IN2": "entry", "OUT": "exit"}),
        (two, {"X-IN": "entry", "X-OUT": "exit"}),
    ):
        for code, direction in lanes.items():
            Lane.objects.create(carpark=carpark, code=code, direction=direction)
    return {"one": one, "two": two}


def make_device(carpark_code: str, lanes: list[str], settings: dict | None = None) -> dict:
    """A device enrolled through the services (the CLI path is covered by the walking slice)."""
    device, issued = services.device_create(carpark_code=carpark_code, lane_codes=lanes, name=f"dev-{lanes[0]}")
    if settings:
        device.settings = settings
        device.save(update_fields=["settings"])
    enrolled = services.device_enrol(code=issued.code, serial="S", model="M")
    return {"device_id": enrolled.device_id, "token": enrolled.token}


def make_booking(
    carpark: CarPark,
    plate: str,
    *,
    arrival: datetime | None = None,
    departure: datetime | None = None,
    status: str = "confirmed",
) -> Booking:
    """A booking written directly (the booking services' own tests cover their rules)."""
    arrival = arrival or now() - timedelta(hours=1)
    departure = departure or now() + timedelta(days=2)
    booking = Booking.objects.create(
        reference="PG-" + secrets.token_hex(3).upper(),
        carpark=carpark,
        customer=Customer.objects.create(name="Test Customer"),
        arrival=arrival,
        departure=departure,
        status=status,
        source="staff",
        price=Decimal("10.00"),
        currency="GBP",
    )
    Vehicle.objects.create(
        booking=booking,
        registration_raw=plate,
        registration=plates.normalise(plate),
        lookalike_key=plates.lookalike_key(plate),
    )
    return booking


async def in_thread(func, /, *args, **kwargs):
    """Run blocking (ORM) work off the test's event loop, closing the thread's database connections afterwards
    so that none outlive the test (the test database is dropped at the end)."""

    def run():
        try:
            return func(*args, **kwargs)
        finally:
            connections.close_all()

    return await asyncio.to_thread(run)
