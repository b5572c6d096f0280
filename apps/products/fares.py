"""A fare's terms at a moment: what cancelling or amending a booking costs and what refund is due.

The one place these terms are worked out: the website and the API show them before paying, and the payments'
refunds call `cancellation_terms` (pure) or `booking_cancellation_terms` (a booking) for the amount to refund.
A fare's own fees and cut-off are the booking's terms; a booking without a fare (made before fares) is treated as
refundable in full until arrival.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

ZERO = Decimal("0")


@dataclass(frozen=True)
class FareTerms:
    code: str
    refundable: bool
    refund_cutoff_hours: int = 24
    amend_fee: Decimal = ZERO
    cancellation_fee: Decimal = ZERO

    @classmethod
    def of(cls, fare) -> "FareTerms":
        """From an apps.products.models.Fare (or None: refundable until arrival, no fees)."""
        if fare is None:
            return cls(code="", refundable=True, refund_cutoff_hours=0)
        return cls(fare.code, fare.refundable, fare.refund_cutoff_hours, fare.amend_fee, fare.cancellation_fee)

    def describe(self) -> str:
        """In a customer's words, shown before paying."""
        if not self.refundable:
            return "Not refundable"
        words = "Refundable" + (
            f" until {self.refund_cutoff_hours} h before arrival" if self.refund_cutoff_hours else ""
        )
        if self.cancellation_fee:
            words += f" (cancellation fee {self.cancellation_fee:.2f})"
        return words


@dataclass(frozen=True)
class CancellationTerms:
    refundable_now: bool
    refund_due: Decimal  # of what was paid, after the fee
    fee: Decimal  # what cancelling now keeps back
    cutoff: datetime | None  # the last moment a refund is due (None: never refundable)


def cancellation_terms(terms: FareTerms, *, paid: Decimal, arrival: datetime, at: datetime) -> CancellationTerms:
    """What cancelling at `at` refunds of `paid` for a stay arriving at `arrival` (aware datetimes)."""
    if not terms.refundable:
        return CancellationTerms(False, ZERO, paid, None)
    cutoff = arrival - timedelta(hours=terms.refund_cutoff_hours)
    if at >= cutoff:
        return CancellationTerms(False, ZERO, paid, cutoff)
    fee = min(terms.cancellation_fee, paid)
    return CancellationTerms(True, paid - fee, fee, cutoff)


def booking_cancellation_terms(booking, *, at: datetime, paid: Decimal | None = None) -> CancellationTerms:
    """The terms for a bookings.Booking (its fare loaded or loadable); `paid` defaults to its price."""
    return cancellation_terms(
        FareTerms.of(booking.fare), paid=booking.price if paid is None else paid, arrival=booking.arrival, at=at
    )
