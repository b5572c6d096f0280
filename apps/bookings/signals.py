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
