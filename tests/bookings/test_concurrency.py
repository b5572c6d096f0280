"""Capacity under concurrency, on PostgreSQL with one connection per thread: creates, amends and cancels on
overlapping days, all at once. No deadlock, no day over capacity, and the day counts reconcile afterwards."""

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection

from apps.bookings import services
from apps.bookings.models import Booking, CapacityDay
from apps.bookings.pricing import stay_dates
from apps.carparks.models import CarPark, Tariff
from tests.bookings.conftest import LONDON, local

pytestmark = pytest.mark.django_db(transaction=True)

THREADS, OPERATIONS, CAPACITY = 8, 25, 4
FIRST_DAY = local("2027-05-01T00:00")


def random_stay(rng: random.Random):
    arrival = FIRST_DAY + timedelta(days=rng.randrange(8), hours=rng.randrange(6, 20))
    return arrival, arrival + timedelta(days=rng.randrange(3), hours=rng.randrange(1, 5))


def worker(no: int, carpark: CarPark, start: threading.Barrier) -> list[str]:
    rng, outcomes = random.Random(no), []
    start.wait()
    try:
        for n in range(OPERATIONS):
            arrival, departure = random_stay(rng)
            action = rng.choice(["create", "create", "amend", "cancel"])
            mine = list(
                Booking.objects.filter(customer__name=f"T{no}", status="confirmed").values_list("pk", flat=True)
            )
            try:
                if action == "create" or not mine:
                    services.booking_create(
                        carpark=carpark,
                        arrival=arrival,
                        departure=departure,
                        customer_name=f"T{no}",
                        vehicles=[{"registration": f"T{no}N{n}"}],
                        source=Booking.Source.STAFF,
                    )
                elif action == "amend":
                    booking = Booking.objects.get(pk=rng.choice(mine))
                    services.booking_amend(booking=booking, arrival=arrival, departure=departure)
                else:
                    services.booking_cancel(booking=Booking.objects.get(pk=rng.choice(mine)))
                outcomes.append(action)
            except services.NoCapacity:
                outcomes.append("full")
    finally:
        connection.close()
    return outcomes


def test_creates_amends_and_cancels_at_once_never_overbook_or_deadlock(committed_world):
    carpark = CarPark.objects.create(code="BUSY", name="Busy Park", capacity=CAPACITY)
    Tariff.objects.create(carpark=carpark, daily_rate="7.00")
    start = threading.Barrier(THREADS)
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        outcomes = [o for f in [pool.submit(worker, n, carpark, start) for n in range(THREADS)] for o in f.result()]

    assert len(outcomes) == THREADS * OPERATIONS  # every operation finished: no deadlock, no error
    assert "full" in outcomes and "amend" in outcomes and "cancel" in outcomes, outcomes
    expected: dict = {}
    for b in Booking.objects.filter(carpark=carpark).exclude(status="cancelled"):
        for d in stay_dates(arrival=b.arrival, departure=b.departure, tz=LONDON):
            expected[d] = expected.get(d, 0) + 1
    held = {d: n for d, n in CapacityDay.objects.filter(carpark=carpark).values_list("date", "held") if n}
    assert held == expected
    assert max(held.values()) <= CAPACITY
