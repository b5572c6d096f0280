"""Bookings' domain signals (sent inside the booking service's transaction) write webhook events to the outbox in
that same transaction. The lane's and the no-show sweep's status changes are written by a database trigger
instead (see the migration): the decisions' one-statement writes on the server's loop never pass a signal."""

from apps.bookings import signals as booking_signals
from apps.products import signals as product_signals
from apps.webhooks import services


def _receiver(event_type: str):
    def receive(sender, booking, **kwargs) -> None:
        services.event_record(event_type=event_type, booking=booking)

    return receive


_RECEIVERS = {
    "booking_created": _receiver("booking.created"),
    "booking_amended": _receiver("booking.amended"),
    "booking_cancelled": _receiver("booking.cancelled"),
}


def stop_sell(sender, *, agent_id: int | None = None, data: dict, **kwargs) -> None:
    services.event_record(event_type="allocation.stop_sell", agent_id=agent_id, data=data)


def connect() -> None:
    for name, receiver in _RECEIVERS.items():
        getattr(booking_signals, name).connect(receiver, dispatch_uid=f"webhooks.{name}")
    product_signals.allocation_stop_sell.connect(stop_sell, dispatch_uid="webhooks.allocation_stop_sell")
