"""Booking events that customers are told about, connected in CustomersConfig.ready (after accounting's, so a
cancellation's refund is already on the ledger). Sent inside the booking's transaction: the message row commits
with the change, and its delivery is queued after the commit."""

from anymail.signals import tracking

from apps.accounting.selectors import booking_balance
from apps.bookings import signals
from apps.bookings.models import Booking
from apps.customers.messages import customer_message_send, customer_message_tracked, may_write_to


def on_booking_created(sender, booking, **kwargs) -> None:
    """A brand's booking, once confirmed: at once, or when its payment goes through (`on_booking_confirmed`); an
    agent's, when it carries its customer's email and the agent lets us write to them (messages.may_write_to)."""
    if may_write_to(booking) and booking.status == Booking.Status.CONFIRMED:
        customer_message_send(booking_id=booking.pk, kind="confirmed", new_booking=True)


def on_booking_confirmed(sender, booking, **kwargs) -> None:
    if may_write_to(booking):
        customer_message_send(booking_id=booking.pk, kind="confirmed")


def on_booking_amended(sender, booking, **kwargs) -> None:
    if may_write_to(booking):
        customer_message_send(booking_id=booking.pk, kind="amended", event=f"amended:{booking.updated_at.isoformat()}")


def on_booking_cancelled(sender, booking, **kwargs) -> None:
    if may_write_to(booking) and booking.status == Booking.Status.CANCELLED:  # not an unpaid booking's expiry
        owed_back = -booking_balance(booking.pk)
        extra = {"refund": str(owed_back)} if owed_back > 0 else {}
        customer_message_send(booking_id=booking.pk, kind="cancelled", extra=extra)


# anymail's normalised events that say a message did not reach its reader, or should not have been sent to them
UNDELIVERED = {"bounced", "rejected", "complained"}


def on_mail_tracking(sender, event, esp_name, **kwargs) -> None:
    """The mail provider's tracking webhook (anymail's `tracking` signal, any provider): a bounce, a rejection or
    a complaint is recorded against the message; all but a soft bounce (Postmark's SoftBounce, a full mailbox)
    mark the address as bouncing."""
    if event.event_type not in UNDELIVERED:
        return
    raw = event.esp_event if isinstance(event.esp_event, dict) else {}
    soft = raw.get("Type") == "SoftBounce" or raw.get("severity") == "temporary"
    detail = " ".join(filter(None, [esp_name, event.reject_reason, event.description, event.mta_response]))
    customer_message_tracked(
        provider_id=event.message_id or "",
        recipient=event.recipient or "",
        event=event.event_type,
        detail=detail,
        hard=not soft,
    )


def connect() -> None:
    tracking.connect(on_mail_tracking, dispatch_uid="customers.mail_tracking")
    signals.booking_created.connect(on_booking_created, dispatch_uid="customers.booking_created")
    signals.booking_amended.connect(on_booking_amended, dispatch_uid="customers.booking_amended")
    signals.booking_cancelled.connect(on_booking_cancelled, dispatch_uid="customers.booking_cancelled")
    signals.booking_confirmed.connect(on_booking_confirmed, dispatch_uid="customers.booking_confirmed")
