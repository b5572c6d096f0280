"""A booking's life sends each message once (issue 32): through the real jobs and Django's SMTP backend to a local
SMTP server, texts to a local HTTP stand-in of an SMS provider; each message rendered and checked."""

import re
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import icalendar
import pytest
from django.test import Client
from django.utils import timezone

from apps.accounting import selectors as accounting
from apps.accounting import services as payments
from apps.accounting.models import CarParkRates
from apps.bookings import services as bookings
from apps.bookings.models import Booking
from apps.carparks.models import Brand, CarPark
from apps.customers import messages, rendering
from apps.customers.models import CustomerMessage
from apps.payments.models import OverstayPayLink
from tests.customers.conftest import EMAIL, PHONE, PLATE, decide, web_booking
from tests.lanes.conftest import make_device

TOKYO = ZoneInfo("Asia/Tokyo")


def parts(message) -> tuple[str, str]:
    return message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()


def check_rendered(message, booking: Booking, arrival=None) -> str:
    """The common checks of every email: brand, both parts, no HTML in the text, times in the car park's zone."""
    text, html = parts(message)
    assert message["From"] == '"Parkgate Demo" <no-reply@parkgate.test>' or "Parkgate Demo" in message["From"]
    assert message["To"].addresses[0].addr_spec.lower() == EMAIL and booking.reference in message["Subject"]
    assert not re.search(r"<[a-z/!]|&[a-z]+;|&#", text), text
    assert "#1d4ed8" in html and "<html" in html and booking.reference in html
    local = (arrival or booking.arrival).astimezone(TOKYO)
    assert local.strftime("%H:%M") in text and "JST" in text, text
    for link in re.findall(r"https?://\S+", text):
        parsed = urlsplit(link)
        if parsed.hostname in ("localhost", "127.0.0.1"):  # the brand's own pages answer
            assert Client(HTTP_HOST=parsed.hostname).get(parsed.path).status_code == 200, link
    return text


def test_a_bookings_life_sends_each_message_once(outbound):
    smtp, sms = outbound
    from project.demo import seed_demo

    seed_demo()
    CarPark.objects.filter(code="LHR-T5").update(timezone="Asia/Tokyo")
    carpark, brand = CarPark.objects.get(code="LHR-T5"), Brand.objects.get(code="parkgate-demo")
    CarParkRates.objects.create(carpark=carpark, overstay_rate=Decimal("4.00"), overstay_unit="hour")
    device = make_device("LHR-T5", ["N-IN", "N-OUT"])["device_id"]
    now = timezone.now().replace(second=0, microsecond=0)

    # Booked (the confirmation, with its calendar file), then changed.
    booking = bookings.booking_create(
        carpark=carpark, arrival=now + timedelta(minutes=30), departure=now + timedelta(days=2),
        customer_name="Jane Smith", customer_email=EMAIL, customer_phone=PHONE, vehicles=[PLATE], source="web",
        brand=brand,
    )  # fmt: skip
    bookings.booking_amend(booking=booking, flight_outbound="BA0117")
    Booking.objects.filter(pk=booking.pk).update(created_at=now - timedelta(days=3))  # booked well ahead
    # The day before: a reminder by email and text. Then in, and out 3 hours late: welcome back and overstay.
    messages.customer_messages_sweep()
    assert decide(device, "N-IN", PLATE, "m-1")["action"] == "open"
    booked_arrival = booking.arrival
    Booking.objects.filter(pk=booking.pk).update(arrival=now - timedelta(hours=10), departure=now - timedelta(hours=4))
    assert decide(device, "N-OUT", PLATE, "m-2")["action"] == "open"
    messages.customer_messages_sweep()
    # Another booking, paid, then cancelled: its refund is told.
    other = web_booking(brand, days=5)
    payments.payment_record(booking_id=other.pk, amount=accounting.booking_balance(other.pk), method="card")
    bookings.booking_cancel(booking=other)
    # Asked again, nothing more goes.
    messages.customer_messages_sweep()
    messages.customer_message_send(booking_id=booking.pk, kind="confirmed")

    booking.refresh_from_db()
    subjects = [m["Subject"] for m in smtp.received]
    assert subjects == [
        f"Parkgate Demo: booking {booking.reference} confirmed",
        f"Parkgate Demo: booking {booking.reference} changed",
        f"Parkgate Demo: your parking tomorrow ({booking.reference})",
        f"Parkgate Demo: welcome back, your receipt for {booking.reference}",
        f"Parkgate Demo: please pay for your extra time ({booking.reference})",
        f"Parkgate Demo: booking {other.reference} confirmed",
        f"Parkgate Demo: booking {other.reference} cancelled",
    ]
    confirmed, amended, reminder, welcome, overstay, _, cancelled = smtp.received
    check_rendered(confirmed, booking, booked_arrival)
    ics = icalendar.Calendar.from_ical(next(p for p in confirmed.iter_attachments()).get_content())
    event = ics.walk("VEVENT")[0]
    assert event.decoded("dtstart") == booked_arrival and booking.reference in str(event["summary"])
    assert "has been changed" in check_rendered(amended, booking, booked_arrival)
    assert "At the barrier" in check_rendered(reminder, booking, booked_arrival)
    welcome_text = check_rendered(welcome, booking)
    assert "Paid:" in welcome_text and "Still owed:" in welcome_text
    overstay_text = check_rendered(overstay, booking)
    link = OverstayPayLink.objects.get(booking=booking)  # open_and_flag: the overstay's own pay link
    assert "16.00 GBP" in overstay_text and f"http://localhost:8000/pay/{link.token}" in overstay_text
    assert "We will refund" in parts(cancelled)[0] and other.reference in cancelled["Subject"]
    assert [(t["to"], t["auth"]) for t in sms.received] == [(PHONE, "Bearer sms-token")] * 2
    assert "The barrier reads your plate" in sms.received[0]["text"] and "16.00 GBP" in sms.received[1]["text"]
    assert booking.confirmation_sent_at is not None
    assert set(CustomerMessage.objects.values_list("status", flat=True)) == {"sent"}


def test_a_template_variable_missing_fails_loudly_and_the_message_is_retried(world):
    booking = web_booking(Brand.objects.get(code="parkgate-demo"))  # in the test's transaction: no job runs
    (message,) = messages.customer_message_send(booking_id=booking.pk, kind="overstay", event="overstay:x")  # no extra
    with pytest.raises(rendering.MissingVariable, match=r"extra\.minutes"):
        messages.customer_message_deliver(message_id=message.pk)  # what the job runs
    message.refresh_from_db()
    assert message.status == "pending" and "extra.minutes" in message.last_error and message.attempts == 1
    assert message.next_attempt_at > timezone.now() and message.sent_at is None
    assert messages.customer_message_tracked(provider_id="<nope@x>", recipient="", event="bounced") is None
