"""Money back when a booking changes: a cancellation or a lower price leaves the booking in credit on the ledger,
and that credit goes back to the card it came from. Connected in PaymentsConfig.ready, after the ledger's own
receivers (apps.accounting comes first in INSTALLED_APPS), so the balance read here already includes the change."""

from apps.bookings import signals
from apps.payments import services


def on_booking_cancelled(sender, booking, **kwargs) -> None:
    services.refunds_for_credit(booking_id=booking.pk, reason="booking cancelled")


def on_booking_amended(sender, booking, previous_price, **kwargs) -> None:
    if booking.price < previous_price:
        services.refunds_for_credit(booking_id=booking.pk, reason="booking changed to a lower price")


def connect() -> None:
    signals.booking_cancelled.connect(on_booking_cancelled, dispatch_uid="payments.booking_cancelled")
    signals.booking_amended.connect(on_booking_amended, dispatch_uid="payments.booking_amended")
