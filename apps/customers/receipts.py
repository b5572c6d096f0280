"""A booking's VAT receipt: what was sold (the stay, any fee kept, overstays), paid and refunded, with the VAT the
ledger posted on it (apps.accounting: the one VAT split), as plain data and as a PDF (WeasyPrint)."""

from decimal import Decimal

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from apps.accounting import chart
from apps.accounting.models import LedgerLine, Payment
from apps.accounting.selectors import booking_balance
from apps.bookings.models import Booking

ZERO = Decimal("0.00")


def booking_receipt(*, booking_id: int) -> dict:
    booking = Booking.objects.select_related("carpark", "brand", "customer").get(pk=booking_id)
    payments = list(
        Payment.objects.filter(booking_id=booking_id)
        .order_by("received_at")
        .values("kind", "method", "amount", "received_at")
    )
    sold = LedgerLine.objects.filter(
        booking_id=booking_id, account__code__in=[chart.PARKING_REVENUE, chart.OVERSTAY_REVENUE, chart.OUTPUT_VAT]
    )
    charged = -(sold.aggregate(s=Sum("amount"))["s"] or ZERO)
    vat_lines = sold.filter(account__code=chart.OUTPUT_VAT)
    vat = -(vat_lines.aggregate(s=Sum("amount"))["s"] or ZERO)
    rates = sorted({r for r in vat_lines.values_list("vat_rate", flat=True) if r is not None}, reverse=True)
    return {
        "number": f"R-{booking.reference}",
        "issued_at": timezone.now(),
        "booking": booking,
        "vehicles": [v.registration_raw for v in booking.vehicles.all()],
        "charged": charged,
        "net": charged - vat,
        "vat": vat,
        "vat_rate_percent": " / ".join(f"{(r * 100).normalize():f}" for r in rates) or "0",
        "vat_number": settings.VAT_NUMBER,
        "payments": payments,
        "balance": booking_balance(booking_id),
    }


def pdf(html: str) -> bytes:
    from weasyprint import HTML  # imported here: it loads the system's Pango, needed by no other page

    return HTML(string=html).write_pdf()
