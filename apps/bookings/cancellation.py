"""What a cancellation keeps of a prepaid (website) booking's price: its fare decides (apps.products.fares, the one
rule for customers, staff and the API); agents' bookings keep nothing here (their invoices and terms apply)."""

from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from apps.products.fares import booking_cancellation_terms

ZERO = Decimal("0.00")


def cancellation_fee(booking, at: datetime | None = None) -> Decimal:
    if booking.source != "web" or booking.agent_id is not None:
        return ZERO
    return booking_cancellation_terms(booking, at=at or timezone.now()).fee


def free_until(booking) -> datetime | None:
    """The last moment a cancellation refunds (None: the fare never does)."""
    return booking_cancellation_terms(booking, at=timezone.now()).cutoff
