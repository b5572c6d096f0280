"""The ledger's side of booking events: connected in AccountingConfig.ready to apps.bookings.signals.

The signals are sent inside the booking service's transaction, so the postings commit with the booking, and an
exception here (a closed period, say) rolls the booking back and reaches the caller.
"""

from apps.accounting import services
from apps.bookings import signals


def on_booking_created(sender, booking, **kwargs) -> None:
    services.booking_ledger_sync(booking=booking, memo=f"{booking.reference} sold")


def on_booking_amended(sender, booking, **kwargs) -> None:
    services.booking_ledger_sync(booking=booking, memo=f"{booking.reference} amended")


def on_booking_cancelled(sender, booking, **kwargs) -> None:
    services.booking_ledger_sync(booking=booking, memo=f"{booking.reference} cancelled")


def connect() -> None:
    signals.booking_created.connect(on_booking_created, dispatch_uid="accounting.booking_created")
    signals.booking_amended.connect(on_booking_amended, dispatch_uid="accounting.booking_amended")
    signals.booking_cancelled.connect(on_booking_cancelled, dispatch_uid="accounting.booking_cancelled")
