"""The customer's own pages beside the brand site's manage page (apps.bookings.views): resend the confirmation and
download a receipt (PDF). The same proof as the manage page (this browser booked it, or gave reference + email)."""

import time

from django.http import HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from apps.bookings.views import common as site
from apps.core.concurrency import run_sync
from apps.customers import receipts
from apps.customers.messages import customer_message_send

RESEND_WINDOW_S = 600  # one resend per booking per 10 minutes: a second click sends nothing more


@require_POST
async def resend_confirmation(request, reference: str):
    brand_site = await site._site(request)
    booking = await site._managed_booking(request, brand_site, reference)
    window = int(time.time() // RESEND_WINDOW_S)
    await run_sync(customer_message_send, booking_id=booking.pk, kind="confirmed", event=f"confirmed:resend:{window}")
    return HttpResponseRedirect(reverse("site-booking", args=[reference]) + "?resent=1")


@require_GET
async def receipt_pdf(request, reference: str):
    brand_site = await site._site(request)
    booking = await site._managed_booking(request, brand_site, reference)
    receipt = await run_sync(receipts.booking_receipt, booking_id=booking.pk)
    with timezone.override(booking.carpark.tz):
        html = render_to_string("customers/receipt.html", {"receipt": receipt, "brand": brand_site.brand})
    pdf = await run_sync(receipts.pdf, html)
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="receipt-{booking.reference}.pdf"'
    return response
