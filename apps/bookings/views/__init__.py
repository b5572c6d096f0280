"""Customer websites: the request's host picks the brand; a host that is no brand's gets 404. One module per
concern: common <- booking, manage, pages.

search -> quote (price, spaces left) -> book -> confirmation; manage (reference + email): view, amend, cancel.
Times are shown and entered in the car park's timezone. A brand sells and shows only its own car parks and
bookings. Which bookings a browser may manage is kept in a signed cookie (no server-side session needed).

Callers import `apps.bookings.views` and use the names it re-exports.
"""

from apps.bookings.views.booking import book, booked, home, quote
from apps.bookings.views.manage import booking_amend, booking_cancel, booking_detail, manage
from apps.bookings.views.pages import carpark, policy

__all__ = [
    "book",
    "booked",
    "booking_amend",
    "booking_cancel",
    "booking_detail",
    "carpark",
    "home",
    "manage",
    "policy",
    "quote",
]
