"""Money back when a booking changes: a cancellation or a lower price leaves the booking in credit on the ledger,
and that credit goes back to the card it came from. Connected in PaymentsConfig.ready, after the ledger's own
receivers (apps.accounting comes first in INSTALLED_APPS), so the balance read here already includes the change."""

from apps.access.signals import visit_held, visit_overstayed
from apps.bookings import signals
from apps.payments import overstay, services


def on_booking_cancelled(sender, booking, **kwargs) -> None:
    services.refunds_for_credit(booking_id=booking.pk, reason="booking cancelled")


def on_booking_amended(sender, booking, previous_price, **kwargs) -> None:
    if booking.price < previous_price:
        services.refunds_for_credit(booking_id=booking.pk, reason="booking changed to a lower price")


def on_visit_held(sender, visit_id, lane, alert, **kwargs) -> None:
    overstay.pay_link_for_held(visit_id=visit_id, lane=lane, alert=alert)


def on_visit_overstayed(sender, visit, **kwargs) -> None:
    """`open_and_flag`: the car has left, charged (apps.accounting's receiver, connected first); its pay link goes
    to the customer in the overstay message (apps.customers). A held visit let out (policy `hold`) was paid already."""
    if visit.carpark.overstay_policy == "open_and_flag":
        overstay.pay_link_for_flagged(visit=visit)


def connect() -> None:
    visit_held.connect(on_visit_held, dispatch_uid="payments.visit_held")
    visit_overstayed.connect(on_visit_overstayed, dispatch_uid="payments.visit_overstayed")
    signals.booking_cancelled.connect(on_booking_cancelled, dispatch_uid="payments.booking_cancelled")
    signals.booking_amended.connect(on_booking_amended, dispatch_uid="payments.booking_amended")
