"""The ledger's side of booking and lane events, connected in AccountingConfig.ready.

apps.bookings.signals and apps.access.signals are sent inside their services' transactions, so the postings
commit with the booking (or the exit), and an exception here (a closed period, say) rolls the event back and
reaches the caller (a lane controller then gets `retry`).
"""

from apps.access.signals import visit_overstayed
from apps.accounting import services
from apps.bookings import signals


def on_booking_created(sender, booking, **kwargs) -> None:
    services.booking_ledger_sync(booking=booking, memo=f"{booking.reference} sold", new=True)


def on_booking_amended(sender, booking, **kwargs) -> None:
    services.booking_ledger_sync(booking=booking, memo=f"{booking.reference} amended")


def on_booking_confirmed(sender, booking, **kwargs) -> None:
    """Paid: sold again if it had expired meanwhile (a pending booking was already sold)."""
    services.booking_ledger_sync(booking=booking, memo=f"{booking.reference} paid")


def on_booking_cancelled(sender, booking, **kwargs) -> None:
    services.booking_ledger_sync(booking=booking, memo=f"{booking.reference} cancelled")


def on_visit_overstayed(sender, visit, minutes, **kwargs) -> None:
    """An exit closed a booking's visit after departure + grace: charge the overstay (once per visit)."""
    if visit.booking_id is None or visit.exited_at is None:
        return
    services.overstay_charge_post(booking_id=visit.booking_id, exited_at=visit.exited_at, visit_id=visit.pk)


def connect() -> None:
    signals.booking_created.connect(on_booking_created, dispatch_uid="accounting.booking_created")
    signals.booking_amended.connect(on_booking_amended, dispatch_uid="accounting.booking_amended")
    signals.booking_cancelled.connect(on_booking_cancelled, dispatch_uid="accounting.booking_cancelled")
    signals.booking_confirmed.connect(on_booking_confirmed, dispatch_uid="accounting.booking_confirmed")
    visit_overstayed.connect(on_visit_overstayed, dispatch_uid="accounting.visit_overstayed")
