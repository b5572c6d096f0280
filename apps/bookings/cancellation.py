"""What a cancellation keeps of a prepaid (website) booking's price: nothing until the car park's
`free_cancellation_hours` before arrival, then its `cancellation_fee` (never more than the price). The products
issue turns this into fares; until then this is the one rule, for customers, staff and the API alike."""

from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

ZERO = Decimal("0.00")


def cancellation_fee(booking, at: datetime | None = None) -> Decimal:
    if booking.source != "web" or booking.agent_id is not None:
        return ZERO  # agents' bookings: their invoices and terms, not the website's fare
    at = at or timezone.now()
    carpark = booking.carpark
    if at < booking.arrival - timedelta(hours=carpark.free_cancellation_hours):
        return ZERO
    return min(carpark.cancellation_fee, booking.price)


def free_until(booking) -> datetime:
    return booking.arrival - timedelta(hours=booking.carpark.free_cancellation_hours)
