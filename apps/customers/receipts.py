"""A booking's VAT receipt: what was bought, paid and refunded, VAT shown as included in the price
(CUSTOMER_VAT_RATE), as plain data and as a PDF (WeasyPrint: HTML and CSS to PDF)."""

from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.utils import timezone

from apps.accounting.models import Payment
from apps.accounting.selectors import booking_balance
from apps.bookings.models import Booking

CENT = Decimal("0.01")


def booking_receipt(*, booking_id: int) -> dict:
    booking = Booking.objects.select_related("carpark", "brand", "customer").get(pk=booking_id)
    rate = Decimal(str(settings.CUSTOMER_VAT_RATE))
    payments = list(
        Payment.objects.filter(booking_id=booking_id)
        .order_by("received_at")
        .values("kind", "method", "amount", "received_at")
    )
    charged = booking.price if booking.status != Booking.Status.CANCELLED else sum(
        (p["amount"] if p["kind"] == "payment" else -p["amount"] for p in payments), Decimal("0")
    )  # fmt: skip
    vat = (charged * rate / (1 + rate)).quantize(CENT, ROUND_HALF_UP)
    return {
        "number": f"R-{booking.reference}",
        "issued_at": timezone.now(),
        "booking": booking,
        "vehicles": [v.registration_raw for v in booking.vehicles.all()],
        "charged": charged,
        "net": charged - vat,
        "vat": vat,
        "vat_rate_percent": (rate * 100).normalize(),
        "vat_number": settings.CUSTOMER_VAT_NUMBER,
        "payments": payments,
        "balance": booking_balance(booking_id),
    }


def pdf(html: str) -> bytes:
    from weasyprint import HTML  # imported here: it loads the system's Pango, needed by no other page

    return HTML(string=html).write_pdf()
