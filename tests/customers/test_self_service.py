"""The customer's manage page (issue 32): history of what changed and by whom, vehicle and flights changed for
free, the confirmation resent once per click window, a PDF receipt; lookups answer alike for a wrong reference
and a wrong email."""

import re
from decimal import Decimal

from django.test import Client

from apps.bookings.models import Booking, BookingChange
from apps.carparks.models import Brand
from apps.customers.models import CustomerMessage
from apps.customers.receipts import booking_receipt
from tests.customers.conftest import EMAIL, web_booking


def test_manage_history_free_changes_resend_and_receipt(demo_world):  # committed: async views read on a thread
    booking = web_booking(Brand.objects.get(code="parkgate-demo"))
    client = Client(HTTP_HOST="localhost")
    wrong_ref = client.post("/manage/", {"reference": "PG-NOPE00", "email": EMAIL})
    wrong_email = client.post("/manage/", {"reference": booking.reference, "email": "someone@example.com"})
    assert wrong_ref.status_code == wrong_email.status_code == 404

    def answer(response, reference: str, email: str) -> bytes:  # the page less what the form echoes back
        page = response.content.replace(reference.encode(), b"").replace(email.encode(), b"")
        return re.sub(rb'(nonce|value)="[^"]*"', b"", page)  # and its per-response CSP nonce and CSRF token

    assert answer(wrong_ref, "PG-NOPE00", EMAIL) == answer(wrong_email, booking.reference, "someone@example.com")
    assert client.post("/manage/", {"reference": booking.reference, "email": EMAIL.upper()}).status_code == 302

    local = booking.arrival.astimezone(booking.carpark.tz).strftime("%Y-%m-%dT%H:%M")
    departure = booking.departure.astimezone(booking.carpark.tz).strftime("%Y-%m-%dT%H:%M")
    changed = client.post(
        f"/manage/{booking.reference}/amend/",
        {"arrival": local, "departure": departure, "registration": "JS05 NEW", "flight_outbound": "ba0117"},
    )
    assert changed.status_code == 200 and "Your booking has been changed." in changed.text
    step = BookingChange.objects.filter(booking=booking).latest("at")
    assert (step.action, step.actor) == ("amended", "customer")
    assert {c["field"] for c in step.changes} == {"vehicles", "flight_outbound"}  # same dates: same price
    page = client.get(f"/manage/{booking.reference}/").text
    assert "History" in page and "JS05 WEB &rarr; JS05 NEW" in page and "BA0117" in page

    for _ in range(2):
        assert client.post(f"/manage/{booking.reference}/resend/")["Location"].endswith("?resent=1")
    resends = CustomerMessage.objects.filter(booking=booking, event__startswith="confirmed:resend:")
    assert resends.count() == 1

    receipt = client.get(f"/manage/{booking.reference}/receipt.pdf")
    assert receipt.status_code == 200 and receipt["Content-Type"] == "application/pdf"
    assert receipt.content.startswith(b"%PDF-") and len(receipt.content) > 2000
    figures = booking_receipt(booking_id=booking.pk)  # the VAT the ledger posted, not a second computation
    sold = Booking.objects.get(pk=booking.pk).price
    assert figures["charged"] == sold and figures["vat_rate_percent"] == "20"
    assert abs(figures["vat"] - (sold / 6).quantize(Decimal("0.01"))) <= Decimal("0.01")  # 20% of a VAT-inclusive price
    assert Client(HTTP_HOST="localhost").get(f"/manage/{booking.reference}/receipt.pdf").status_code == 404
