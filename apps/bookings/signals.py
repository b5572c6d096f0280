"""Domain signals of bookings, sent synchronously INSIDE the booking service's transaction.

They let apps above bookings (accounting's ledger, for one) record their part of the same unit of work without
bookings importing them (the import-linter contract forbids it). A receiver that raises rolls the booking back.
Receivers must be fast and must not do I/O outside the database: real-time events go through apps.core.events.

Every signal is sent with `booking` (the saved Booking) and:
- booking_created:   nothing else
- booking_amended:   previous_price (Decimal), previous_commission (Decimal | None)
- booking_cancelled: previous_status (str)
- booking_confirmed: nothing else (a booking that waited for its payment is paid: apps.bookings.prepaid)
"""

from django.dispatch import Signal

booking_created = Signal()
booking_amended = Signal()
booking_cancelled = Signal()
booking_confirmed = Signal()

# allocation_stop_sell: sent (inside its transaction) by whatever stops or resumes selling a car park's spaces to a
# channel, with `agent_id` (int | None: the channel's agent, None for all or the websites) and `data` (the event's
# JSON: car park code, date, product, stopped). Outbound webhooks send it as `allocation.stop_sell`.
allocation_stop_sell = Signal()
