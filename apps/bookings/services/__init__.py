"""Booking writes, one module per concern: common <- create, amend, cancel. Every booking, from the website, the
API or an email, is made by these functions.

Each owns its transaction: capacity holds (apps.bookings.capacity), the booking rows and the domain signals
(apps.bookings.signals, where the ledger posts) commit or roll back together. docs/contracts-internal.md is the
contract for the signatures and exceptions. Callers import `apps.bookings.services` and use the names it re-exports.
"""

from apps.bookings.errors import BookingClosed, BookingInvalid, DuplicateAgentRef, NoCapacity
from apps.bookings.services.amend import booking_amend, booking_amend_quote
from apps.bookings.services.cancel import booking_cancel
from apps.bookings.services.common import (
    booking_changes_publish,
    booking_mark_confirmation_sent,
    local_to_utc,
    new_reference,
)
from apps.bookings.services.create import booking_create

__all__ = [
    "BookingClosed",
    "BookingInvalid",
    "DuplicateAgentRef",
    "NoCapacity",
    "booking_amend",
    "booking_amend_quote",
    "booking_cancel",
    "booking_changes_publish",
    "booking_create",
    "booking_mark_confirmation_sent",
    "local_to_utc",
    "new_reference",
]
