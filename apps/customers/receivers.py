"""Booking events that customers are told about, connected in CustomersConfig.ready (after accounting's, so a
cancellation's refund is already on the ledger). Sent inside the booking's transaction: the message row commits
with the change, and its delivery is queued after the commit."""

from apps.accounting.selectors import booking_balance
from apps.bookings import signals
from apps.bookings.models import Booking
from apps.customers.messages import customer_message_send


def on_booking_created(sender, booking, **kwargs) -> None:
    """A brand's booking, once confirmed: at once, or when its payment goes through (`on_booking_confirmed`)."""
    if booking.brand_id and booking.status == Booking.Status.CONFIRMED:
        customer_message_send(booking_id=booking.pk, kind="confirmed")


def on_booking_confirmed(sender, booking, **kwargs) -> None:
    if booking.brand_id:
        customer_message_send(booking_id=booking.pk, kind="confirmed")


def on_booking_amended(sender, booking, **kwargs) -> None:
    if booking.brand_id:
        customer_message_send(booking_id=booking.pk, kind="amended", event=f"amended:{booking.updated_at.isoformat()}")


def on_booking_cancelled(sender, booking, **kwargs) -> None:
    if booking.brand_id and booking.status == Booking.Status.CANCELLED:  # not an unpaid booking's expiry
        owed_back = -booking_balance(booking.pk)
        extra = {"refund": str(owed_back)} if owed_back > 0 else {}
        customer_message_send(booking_id=booking.pk, kind="cancelled", extra=extra)


def connect() -> None:
    signals.booking_created.connect(on_booking_created, dispatch_uid="customers.booking_created")
    signals.booking_amended.connect(on_booking_amended, dispatch_uid="customers.booking_amended")
    signals.booking_cancelled.connect(on_booking_cancelled, dispatch_uid="customers.booking_cancelled")
    signals.booking_confirmed.connect(on_booking_confirmed, dispatch_uid="customers.booking_confirmed")
