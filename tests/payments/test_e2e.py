"""Card payments end to end on real processes: a `serve` + arq `worker` with the stripe provider on localstripe,
which sends its signed webhooks to the server. The webhook's signature contract over HTTP, and a customer paying
for a booking on a brand's domain in headless Chromium (card element, 3-D Secure step, confirmation page); an overstay
held at an exit paid from the lane display's pay link, which opens a WebSocket lane controller's barrier."""

import re
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from apps.access.models import Visit
from apps.bookings.models import Booking
from apps.core.plates import lookalike_key
from apps.payments import overstay
from apps.payments.models import Payment, WebhookEvent
from tests.bookings.conftest import hidden_inputs
from tests.bookings.test_browser import CHROMIUM_ARGS, PHONE, db, local_input
from tests.clients import LaneController, enrol
from tests.lanes.conftest import now
from tests.payments.conftest import stripe_env
from tests.support import ARTIFACTS, start_server, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def stripe_server(server_env, localstripe):
    # A queue of its own: the session's other workers have no Stripe keys.
    env = server_env | stripe_env(localstripe) | {"ARQ_QUEUE_NAME": "parkgate:payments-tests"}
    server = start_server(env, name="serve-stripe")
    localstripe.send_webhooks_to(f"{server.http}/payments/stripe/webhook/")
    yield server
    server.stop()


def test_a_webhook_without_a_good_signature_is_refused_and_changes_nothing(stripe_server, transactional_db):
    url = f"{stripe_server.http}/payments/stripe/webhook/"
    body = b'{"id": "evt_forged", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_x"}}}'
    assert httpx.post(url, content=body).status_code == 400
    assert httpx.post(url, content=body, headers={"Stripe-Signature": "t=1,v1=deadbeef"}).status_code == 400
    assert db(lambda: WebhookEvent.objects.count()) == 0


@pytest.mark.browser
def test_a_customer_pays_by_card_with_3d_secure_on_a_brands_domain(stripe_server, demo_world):
    site = f"http://skyline.parkgate.test:{stripe_server.http_port}"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=PHONE)
            page.goto(f"{site}/quote/?carpark=LHR-T5&arrival={local_input(20, 8)}&departure={local_input(22, 18)}")
            page.fill("#id_name", "Jane Smith")
            page.fill("#id_email", "jane@example.com")
            page.fill("#id_phone", "07700 900123")
            page.fill("#id_registration", "AB12CDE")
            page.click("form[action='/book/'] button[type=submit]")
            page.screenshot(path=str(ARTIFACTS / "payments-pay-step.png"), full_page=True)
            expect(page.locator("#payment h2")).to_have_text("Pay for your parking")
            reference = page.locator("#reference").inner_text()
            assert db(lambda: Booking.objects.get(reference=reference).status) == "pending_payment"
            card = page.locator("#card-element")
            card.locator("input[placeholder=number]").fill("4000002500003155")  # asks for 3-D Secure
            card.locator("input[placeholder=exp_month]").fill("12")
            card.locator("input[placeholder=exp_year]").fill("34")
            card.locator("input[placeholder=cvc]").fill("123")
            card.locator("input[placeholder=postal_code]").fill("TW6 2GA")
            page.click("#pay-button")
            page.get_by_role("button", name="Complete authentication").click()  # Stripe.js's 3-D Secure step
            expect(page.locator("#confirmation h2")).to_have_text("Thank you, your parking is booked")
            expect(page.locator("#status")).to_have_text("Confirmed")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "payments-confirmed.png"), full_page=True)
        finally:
            browser.close()
    booking = db(lambda: Booking.objects.get(reference=reference))
    payment = db(lambda: Payment.objects.get(booking__reference=reference))
    assert booking.status == "confirmed" and payment.status == "succeeded" and payment.amount == booking.price
    # localstripe's signed payment_intent.succeeded reaches the server and its job applies it (changing nothing more)
    wait_for(
        lambda: db(
            lambda: WebhookEvent.objects.filter(type="payment_intent.succeeded", applied_at__isnull=False).exists()
        ),
        timeout=20,
        message="the webhook applied",
    )
    assert db(lambda: Payment.objects.filter(booking__reference=reference, status="succeeded").count()) == 1
    wait_for(
        lambda: db(lambda: Booking.objects.filter(reference=reference, confirmation_sent_at__isnull=False).exists()),
        timeout=20,
        message="the confirmation email",
    )


def _overstaying_at_lhr(plate: str) -> str:
    """LHR-T5 holds overstays; a booking 3 h past its departure whose car is inside (rows written directly: the
    booking and lane services have their own tests)."""
    from apps.accounting.models import CarParkRates
    from apps.carparks.models import Brand, CarPark
    from tests.lanes.conftest import make_booking

    carpark = CarPark.objects.get(code="LHR-T5")
    carpark.overstay_policy = "hold"
    carpark.save()
    CarParkRates.objects.update_or_create(carpark=carpark, defaults={"overstay_rate": "5.00", "overstay_unit": "hour"})
    booking = make_booking(carpark, plate, arrival=now() - timedelta(days=2), departure=now() - timedelta(hours=3))
    Booking.objects.filter(pk=booking.pk).update(brand=Brand.objects.get(code="skyline"))
    Visit.objects.create(carpark=carpark, plate=plate, lookalike_key=lookalike_key(plate),
                         entered_at=now() - timedelta(days=2), booking=booking)  # fmt: skip
    return booking.reference


async def test_an_overstay_paid_from_the_lane_display_opens_a_websocket_controllers_barrier(
    stripe_server, demo_world, server_env, localstripe
):
    reference = db(lambda: _overstaying_at_lhr("H0LD2"))
    device = enrol(stripe_server, server_env, "LHR-T5", ["N-OUT"])
    async with LaneController(stripe_server, device["token"]) as lane:
        await lane.hello()
        held = await lane.read("N-OUT", "H0LD2")
        assert (held["action"], held["reason"]) == ("deny", "overstay")
        out, token = db(lambda: overstay.lane_display_issue(carpark_code="LHR-T5", lane_code="N-OUT"))
        async with httpx.AsyncClient(base_url=stripe_server.http, timeout=30) as http:
            assert (await http.get(f"/lanes/{out.pk}/display")).status_code == 403
            screen = await http.get(f"/lanes/{out.pk}/display", params={"token": token})
            pay_url = re.search(r'data-url="([^"]+)"', screen.text).group(1)
            assert "<svg" in screen.text and re.search(r"/pay/[\w-]+$", pay_url)
            pay_path = urlsplit(pay_url).path  # the brand's address; here the test server's
            page = await http.get(pay_path)
            payment = re.search(r'data-payment-id="(\d+)"', page.text).group(1)
            csrf = hidden_inputs(page.text)["csrfmiddlewaretoken"]
            paid = await http.post(
                f"{pay_path}/confirm",
                json={"payment": payment, "token": localstripe.card_token()},
                headers={"X-CSRFToken": csrf},
            )
            assert paid.json()["status"] == "succeeded", paid.text
        while (frame := await lane.recv(timeout=10))["type"] != "command":
            pass
        assert (frame["action"], frame["reason"], frame["lane"]) == ("open", "paid", "N-OUT")
        await lane.send({"type": "command_result", "command_id": frame["command_id"], "status": "done"})
    visit = db(lambda: Visit.objects.get(booking__reference=reference))
    assert visit.exited_at is not None and visit.closed_reason == "overstay paid at the exit"
