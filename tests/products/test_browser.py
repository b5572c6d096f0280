"""Chromium books a meet-and-greet product with a saver fare, an EV-charging extra and a promo code on Parkgate
Demo, and a plain product on Skyline; the breakdown shown before booking is what the booking and the ledger hold."""

import pytest
from django.db.models import Sum
from playwright.sync_api import expect

from apps.accounting import chart
from apps.accounting.models import LedgerLine
from apps.bookings.models import Booking
from tests.bookings.test_browser import PHONE, chromium, db, local_input, shot  # noqa: F401  (chromium: a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_book_products_fares_extras_and_a_promo_code_on_each_brand(parkgate, demo_world, chromium):  # noqa: F811
    context = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="en-GB")
    page = context.new_page()
    stay = f"arrival={local_input(30, 8)}&departure={local_input(33, 18)}"  # 4 days
    page.goto(f"http://demo.parkgate.test:{parkgate.http_port}/quote/?carpark=LHR-T5&{stay}")
    expect(page.locator("[data-product=PR] h3")).to_have_text("Park and Ride")
    expect(page.locator("[data-product=MG] h3")).to_have_text("Meet and Greet")
    expect(page.locator("input[type=radio][value='PR:flex']")).to_be_checked()  # the default product and fare
    expect(page.locator("[data-product=MG] [data-fare-price]").nth(1)).to_have_text("£90.00")  # saver: 4 x 22.50
    page.check("input[type=radio][value='MG:saver']")
    page.fill("#extra_EV", "1")
    page.fill("#promo", "welcome10")
    page.click("#show-price")
    expect(page.locator("#breakdown-total")).to_have_text("£113.00")  # 90.00 + EV 4 x 8.00 - 10% of 90.00
    expect(page.locator("#breakdown")).to_contain_text("saver fare -10%")
    expect(page.locator("#breakdown")).to_contain_text("WELCOME10 (10% off)")
    shot(page, "products-1-choice")
    page.fill("#id_name", "Jane Smith")
    page.fill("#id_email", "jane@example.com")
    page.fill("#id_phone", "07700 900123")
    page.fill("#id_registration", "MG12 EVC")
    page.click("form[action='/book/'] button[type=submit]")
    page.click("#demo-pay #pay-button")  # the demo provider's payment step: no card is charged
    expect(page.locator("#confirmation h2")).to_have_text("Thank you, your parking is booked")
    expect(page.locator("#product")).to_have_text("Meet and Greet")
    expect(page.locator("#fare")).to_have_text("Saver (Not refundable)")
    expect(page.locator("#extras")).to_have_text("EV charging x 1")
    expect(page.locator("#price")).to_have_text("£113.00")
    expect(page.locator("#breakdown-total")).to_have_text("£113.00")
    shot(page, "products-2-confirmation")
    reference = page.locator("#reference").inner_text()

    def posted(ref: str):
        booking = Booking.objects.select_related("product", "fare", "promo").get(reference=ref)
        lines = LedgerLine.objects.filter(booking=booking, account__code__in=[chart.PARKING_REVENUE, chart.OUTPUT_VAT])
        return booking, -lines.aggregate(s=Sum("amount"))["s"]

    booking, revenue = db(lambda: posted(reference))
    assert (booking.product.code, booking.fare.code, booking.promo.code) == ("MG", "saver", "WELCOME10")
    assert f"{booking.price}" == f"{revenue}" == booking.price_breakdown["total"] == "113.00"

    page.goto(f"http://skyline.parkgate.test:{parkgate.http_port}/quote/?carpark=MAN-T2&{stay}")
    expect(page.locator("[data-product]")).to_have_count(1)
    expect(page.locator("input[type=radio][value='PR:flex']")).to_be_checked()
    expect(page.locator(".price")).to_have_text("£36.00")
    page.fill("#id_name", "Sam Jones")
    page.fill("#id_email", "sam@example.com")
    page.fill("#id_phone", "07700 900456")
    page.fill("#id_registration", "PR12 ABC")
    page.click("form[action='/book/'] button[type=submit]")
    page.click("#demo-pay #pay-button")
    expect(page.locator("#product")).to_have_text("Park and Ride")
    expect(page.locator("#fare")).to_have_text("Flexible (Refundable until 24 h before arrival)")
    expect(page.locator("#price")).to_have_text("£36.00")
    shot(page, "products-3-skyline")
    context.close()
