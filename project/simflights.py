"""The demo's flight-status feed for `manage.py simulate`: now and then a booked return flight is reported late
(or on time, or landed), over the real feed (POST /api/ops/v1/flight-status, docs/flight-status.md)."""

import random
from datetime import timedelta

import httpx
from django.utils import timezone

from apps.bookings.flights import flight_number_normal
from apps.bookings.models import Booking
from apps.ground import feed

AIRLINES = ["BA", "EZY", "VS", "U2", "LH"]


def demo_return_flight() -> str:
    """A return flight for a simulated booking email, written as agents do (spaces, no zero padding)."""
    return f"{random.choice(AIRLINES)} {random.randint(1, 999)}"


def feed_token() -> str:
    return feed.feed_token_create(name="simulator")


def flight_update() -> dict | None:
    """A status update for one booked return flight landing in the next day: mostly a delay of up to 3 h."""
    now = timezone.now()
    booking = (
        Booking.objects.filter(
            status__in=[Booking.Status.CONFIRMED, Booking.Status.ARRIVED],
            departure__range=(now, now + timedelta(days=1)),
        )
        .exclude(flight_return_key="")
        .select_related("carpark")
        .order_by("?")
        .first()
    )
    if booking is None:
        return None
    scheduled = booking.departure - timedelta(minutes=30)  # customers book their return a little after landing
    status = random.choices(["delayed", "scheduled", "landed"], weights=[6, 3, 1])[0]
    estimated = scheduled + timedelta(minutes=random.randint(20, 180)) if status == "delayed" else None
    return {
        "flight": flight_number_normal(booking.flight_return),
        "date": timezone.localtime(booking.departure, booking.carpark.tz).date().isoformat(),
        "status": status,
        "scheduled": scheduled.isoformat(),
        "estimated": estimated.isoformat() if estimated else None,
        "actual": scheduled.isoformat() if status == "landed" else None,
    }


def send(url: str, token: str, update: dict) -> int:
    answer = httpx.post(f"{url}/api/ops/v1/flight-status", json=update, headers={"Authorization": f"Bearer {token}"})
    return answer.status_code
