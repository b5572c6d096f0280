"""A customer adds an extra after booking, on the website's manage page (Chromium): the extra's stock per day is
respected (sold out: refused, nothing paid), a dearer booking is paid first through the demo payment step, a
cheaper one is refunded, and staff see the extra on the arrival list."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from apps.bookings import services
from apps.bookings.localtime import localize
from apps.bookings.models import Booking
from apps.carparks.models import Brand, CarPark
from apps.payments import services as payments
from apps.payments.models import Payment, Refund
from apps.staff.selectors import carpark_snapshot
from tests.bookings.conftest import LONDON
from tests.bookings.test_browser import PHONE, chromium, db, shot  # noqa: F401  (chromium: a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _paid_web_booking(first_day) -> Booking:
    """A Parkgate Demo booking of PR over two days, paid by card (the demo provider), as the website makes it."""
    carpark = CarPark.objects.get(code="LHR-T5")
    booking = services.booking_create(
        carpark=carpark,
        brand=Brand.objects.get(name="Parkgate Demo"),
        arrival=localize(first_day.replace(hour=8), LONDON),
        departure=localize((first_day + timedelta(days=1)).replace(hour=18), LONDON),
        customer_name="Jane Smith",
        customer_email="jane@example.com",
        vehicles=[{"registration": "EV12 ABC"}],
        source=Booking.Source.WEB,
        pending_payment=True,
        product="PR",
    )
    payment = payments.payment_start(booking_id=booking.pk)
    payments.payment_card_confirm(payment_id=payment.pk, card_token="demo-card")
    return Booking.objects.get(pk=booking.pk)


def _ev_sold_out(day) -> Booking:
    """An agent's booking holding all ten EV chargers of one day."""
    return services.booking_create(
        carpark=CarPark.objects.get(code="LHR-T5"),
        arrival=localize(day.replace(hour=9), LONDON),
        departure=localize(day.replace(hour=17), LONDON),
        customer_name="Fleet Ltd",
        vehicles=[{"registration": "FL12 EET"}],
        source=Booking.Source.API,
        agent=CarPark.objects.get(code="LHR-T5").agents.get(code="skypark"),
        agent_ref="FLEET-1",
        extras=[{"code": "EV", "quantity": 10}],
    )


def test_a_customer_adds_an_extra_after_booking_and_pays_the_difference(parkgate, demo_world, chromium):  # noqa: F811
    first_day = (timezone.now().astimezone(LONDON) + timedelta(days=12)).replace(
        minute=0, second=0, microsecond=0, tzinfo=None
    )
    booking = db(lambda: _paid_web_booking(first_day))
    blocker = db(lambda: _ev_sold_out(first_day + timedelta(days=1)))
    price = booking.price
    context = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="en-GB")
    page = context.new_page()
    page.goto(f"http://demo.parkgate.test:{parkgate.http_port}/manage/")
    page.fill("#id_reference", booking.reference)
    page.fill("#id_email", "jane@example.com")
    page.click("button[type=submit]")
    expect(page.locator("#amend-extras label[for=id_extra_EV]")).to_have_text("EV charging (£8.00 per day)")
    expect(page.locator("#id_extra_EV")).to_have_value("0")

    # the second day's chargers are all sold: refused before anything is paid
    page.fill("#id_extra_EV", "1")
    page.click("form[action$='/amend/'] button[type=submit]")
    expect(page.locator(".alert")).to_contain_text("EV charging is sold out on")
    assert db(lambda: Payment.objects.filter(booking_id=booking.pk, purpose="top_up").count()) == 0

    # one freed: dearer by 2 days x 8.00, paid first through the demo payment step
    db(lambda: services.booking_cancel(booking=blocker))
    page.fill("#id_extra_EV", "1")
    page.click("form[action$='/amend/'] button[type=submit]")
    expect(page.locator("#top-up")).to_contain_text(f"£{price + Decimal('16.00')}")
    shot(page, "extras-1-pay-difference")
    page.click("#demo-pay #pay-button")
    expect(page.locator("#notice")).to_have_text("Your booking has been changed.")
    expect(page.locator("#extras")).to_have_text("EV charging x 1")
    expect(page.locator("#price")).to_have_text(f"£{price + Decimal('16.00')}")
    expect(page.locator("#id_extra_EV")).to_have_value("1")
    shot(page, "extras-2-added")
    amended = db(lambda: Booking.objects.get(pk=booking.pk))
    assert amended.price == price + Decimal("16.00")
    assert db(
        lambda: list(Payment.objects.filter(booking_id=booking.pk, purpose="top_up").values_list("amount", "status"))
    ) == [(Decimal("16.00"), "succeeded")]

    # staff see it on the arrival list of its day
    arrivals = db(lambda: carpark_snapshot(carpark=CarPark.objects.get(code="LHR-T5"), now=amended.arrival)["arrivals"])
    assert [i["sold"] for i in arrivals["items"] if i["reference"] == booking.reference] == ["PR · EV charging x 1"]

    # taken off again: cheaper, the difference refunded to the card
    page.fill("#id_extra_EV", "0")
    page.click("form[action$='/amend/'] button[type=submit]")
    expect(page.locator("#notice")).to_have_text("Your booking has been changed.")
    expect(page.locator("#price")).to_have_text(f"£{price}")
    assert db(lambda: list(Refund.objects.filter(payment__booking_id=booking.pk).values_list("amount", flat=True))) == [
        Decimal("16.00")
    ]
    context.close()
