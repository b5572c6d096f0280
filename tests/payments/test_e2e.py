"""Card payments end to end on real processes: a `serve` + arq `worker` with the stripe provider on localstripe,
which sends its signed webhooks to the server, and an SMTP inbox the server mails to. The webhook's signature
contract over HTTP; then one headless Chromium session (Stripe.js's card element as localstripe serves it) pays on
each brand's domain (one card with 3-D Secure), reads the confirmation page and email, cancels one booking with its
refund shown first, amends the other with a top-up, and pays an overstay from a lane display page that follows the
barrier live, while a WebSocket lane controller waits for the server's `open` (reason `paid`)."""

import asyncio
import re
import threading
from datetime import timedelta
from email import message_from_bytes, policy

import httpx
import pytest
from aiosmtpd.controller import Controller
from django.core.management import call_command
from playwright.sync_api import expect, sync_playwright

from apps.access.models import Visit
from apps.bookings.models import Booking
from apps.core.plates import lookalike_key
from apps.payments import overstay
from apps.payments.models import Payment, Refund, WebhookEvent
from tests.bookings.test_browser import CHROMIUM_ARGS, PHONE, db, local_input
from tests.clients import LaneController, enrol
from tests.lanes.conftest import now
from tests.payments.conftest import stripe_env
from tests.support import ARTIFACTS, free_port, start_server, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


class Inbox:
    """The SMTP server the server under test sends its mail to: what arrives here was really sent."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def find(self, text: str):
        return next((m for m in self.messages if text in str(m["subject"])), None)


@pytest.fixture(scope="module")
def inbox():
    handler = Inbox()
    handler.port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    yield handler
    controller.stop()


@pytest.fixture(scope="module")
def stripe_server(server_env, localstripe, inbox):
    # A queue of its own: the session's other workers have no Stripe keys (nor this inbox).
    env = server_env | stripe_env(localstripe) | {"ARQ_QUEUE_NAME": "parkgate:payments-tests"}
    env["EMAIL_URL"] = f"smtp://127.0.0.1:{inbox.port}"
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


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"payments-{name}.png"), full_page=True)


def pay_by_card(page, number: str = "4242424242424242") -> None:
    """Stripe.js's card element (localstripe's stand-in renders its fields as inputs)."""
    card = page.locator("#card-element")
    card.locator("input[placeholder=number]").fill(number)
    card.locator("input[placeholder=exp_month]").fill("12")
    card.locator("input[placeholder=exp_year]").fill("34")
    card.locator("input[placeholder=cvc]").fill("123")
    card.locator("input[placeholder=postal_code]").fill("TW6 2GA")
    page.click("#pay-button")


def book_and_pay(page, site: str, carpark: str, card: str, name: str) -> str:
    page.goto(f"{site}/quote/?carpark={carpark}&arrival={local_input(20, 8)}&departure={local_input(22, 18)}")
    page.fill("#id_name", "Jane Smith")
    page.fill("#id_email", "jane@example.com")
    page.fill("#id_phone", "07700 900123")
    page.fill("#id_registration", "AB12CDE")
    page.click("form[action='/book/'] button[type=submit]")
    expect(page.locator("#payment h2")).to_have_text("Pay for your parking")
    reference = page.locator("#reference").inner_text()
    assert db(lambda: Booking.objects.get(reference=reference).status) == "pending_payment"
    shot(page, f"{name}-1-pay-step")
    pay_by_card(page, card)
    if card == "4000002500003155":  # asks for 3-D Secure: Stripe.js's authentication step
        page.get_by_role("button", name="Complete authentication").click()
    expect(page.locator("#confirmation h2")).to_have_text("Thank you, your parking is booked")
    expect(page.locator("#status")).to_have_text("Confirmed")
    shot(page, f"{name}-2-confirmed")
    return reference


def read_email(page, inbox: Inbox, reference: str, name: str) -> None:
    """The confirmation email arrived, and reads right (its HTML part shown in the browser)."""
    message = wait_for(lambda: inbox.find(f"{reference} confirmed"), timeout=30, message="the confirmation email")
    assert message["To"] == "jane@example.com"
    assert reference in message.get_body(("plain",)).get_content()
    page.set_content(message.get_body(("html", "plain")).get_content())
    shot(page, f"{name}-3-email")


def manage(page, site: str, reference: str) -> None:
    page.goto(f"{site}/manage/")
    page.fill("#id_reference", reference)
    page.fill("#id_email", "jane@example.com")
    page.click("button[type=submit]")
    expect(page.locator("#reference")).to_have_text(reference)


class ThreadedLane:
    """tests.clients.LaneController on an event loop of its own thread (Playwright's sync API holds this one's)."""

    def __init__(self, server, token: str):
        self.controller = LaneController(server, token)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _command(self, timeout: float) -> dict:
        while (frame := await self.controller.recv(timeout=timeout))["type"] != "command":
            pass
        await self.controller.send({"type": "command_result", "command_id": frame["command_id"], "status": "done"})
        return frame

    def command(self, timeout: float = 20) -> dict:
        return self.run(self._command(timeout), timeout + 5)

    def __enter__(self) -> "ThreadedLane":
        self.run(self.controller.__aenter__())
        self.run(self.controller.hello())
        return self

    def __exit__(self, *exc) -> None:
        self.run(self.controller.__aexit__())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


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


@pytest.mark.browser
def test_customers_pay_cancel_amend_and_pay_an_overstay_by_card_in_chromium(
    stripe_server, demo_world, server_env, localstripe, inbox
):
    port = stripe_server.http_port
    sites = {"demo": f"http://demo.parkgate.test:{port}", "skyline": f"http://skyline.parkgate.test:{port}"}
    db(lambda: call_command("seed_demo", "--base-url", sites["demo"]))  # the brands' links point at this server
    stripe = localstripe.client()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=PHONE)
            # 1. A booking paid on each brand's domain (Skyline's card asks for 3-D Secure); its email.
            paid = {
                "demo": book_and_pay(page, sites["demo"], "LHR-T5", "4242424242424242", "demo"),
                "skyline": book_and_pay(page, sites["skyline"], "MAN-T2", "4000002500003155", "skyline"),
            }
            for brand, reference in paid.items():
                booking = db(lambda r=reference: Booking.objects.select_related("brand").get(reference=r))
                payment = db(lambda r=reference: Payment.objects.get(booking__reference=r))
                assert (booking.status, booking.brand.code) == ("confirmed", brand.replace("demo", "parkgate-demo"))
                assert (payment.status, payment.amount) == ("succeeded", booking.price)
                assert stripe.v1.payment_intents.retrieve(payment.intent_id).status == "succeeded"
                read_email(page, inbox, reference, brand)

            # 2. Cancel on the default brand: what comes back is shown first; the refund reaches Stripe.
            reference = paid["demo"]
            price = db(lambda: Booking.objects.get(reference=reference).price)
            manage(page, sites["demo"], reference)
            expect(page.locator("#cancel-terms")).to_contain_text(f"everything you paid (£{price}) is refunded")
            shot(page, "demo-4-cancel-terms")
            page.once("dialog", lambda dialog: dialog.accept())
            page.click("form[action$='/cancel/'] button[type=submit]")
            expect(page.locator("#status")).to_have_text("Cancelled")
            shot(page, "demo-5-cancelled")
            refund = wait_for(
                lambda: db(lambda: Refund.objects.filter(payment__booking__reference=reference, status="succeeded")
                           .select_related("payment").first()),
                timeout=20, message="the refund sent",
            )  # fmt: skip
            at_stripe = stripe.v1.refunds.retrieve(refund.provider_refund_id)
            assert (at_stripe.amount, at_stripe.payment_intent) == (int(price * 100), refund.payment.intent_id)

            # 3. Amend on Skyline to a dearer stay: the difference is a new intent, paid in the card element first.
            reference = paid["skyline"]
            before = db(lambda: Booking.objects.get(reference=reference).price)
            manage(page, sites["skyline"], reference)
            page.fill("#id_departure", local_input(23, 18))
            page.click("form[action$='/amend/'] button[type=submit]")
            expect(page.locator("#payment h2")).to_have_text("Pay the difference")
            shot(page, "skyline-4-top-up")
            pay_by_card(page)
            expect(page.locator("#notice")).to_have_text("Your booking has been changed.")
            shot(page, "skyline-5-amended")
            after = db(lambda: Booking.objects.get(reference=reference).price)
            top_up = db(lambda: Payment.objects.get(booking__reference=reference, purpose="top_up"))
            assert after > before and (top_up.status, top_up.amount) == ("succeeded", after - before)
            assert stripe.v1.payment_intents.retrieve(top_up.intent_id).amount == int(top_up.amount * 100)
            expect(page.locator("#price")).to_have_text(f"£{after}")

            # 4. An overstay held at the exit, paid from the lane's display (which follows the barrier live).
            held_reference = db(lambda: _overstaying_at_lhr("H0LD2"))
            device = enrol(stripe_server, server_env, "LHR-T5", ["N-OUT"])
            out, token = db(lambda: overstay.lane_display_issue(carpark_code="LHR-T5", lane_code="N-OUT"))
            display = browser.new_page(viewport={"width": 800, "height": 900})
            display.goto(f"{sites['demo']}/lanes/{out.pk}/display?token={token}")
            expect(display.locator("#display-title")).to_have_text("Have a safe journey")
            expect(display.locator("#display-live")).to_have_attribute("data-state", "live")
            with ThreadedLane(stripe_server, device["token"]) as lane:
                held = lane.run(lane.controller.read("N-OUT", "H0LD2"))
                assert (held["action"], held["reason"]) == ("deny", "overstay")
                expect(display.locator("#display-title")).to_have_text("Overstay: please pay to leave")
                shot(display, "overstay-1-display")
                pay_url = display.locator("#qr").get_attribute("data-url")
                assert re.fullmatch(rf"{sites['skyline']}/pay/[\w-]+", pay_url)  # the booking's brand
                assert display.locator("#qr svg").count() == 1
                page.goto(pay_url)  # where the QR code takes the customer's phone
                expect(page.locator("#amount")).to_have_text(display.locator("#display-amount").inner_text())
                shot(page, "overstay-2-pay")
                pay_by_card(page)
                expect(page.locator("#paid")).to_contain_text("The barrier opens for you now.")
                shot(page, "overstay-3-paid")
                command = lane.command()
                assert (command["action"], command["reason"], command["lane"]) == ("open", "paid", "N-OUT")
                expect(display.locator("#display-title")).to_have_text("Have a safe journey")
                shot(display, "overstay-4-display-after")
        finally:
            browser.close()
    visit = db(lambda: Visit.objects.get(booking__reference=held_reference))
    assert visit.exited_at is not None and visit.closed_reason == "overstay paid at the exit"
    # localstripe's signed webhooks reached the server and its job applied them (changing nothing more)
    wait_for(
        lambda: db(lambda: WebhookEvent.objects.filter(type="payment_intent.succeeded", applied_at__isnull=False)
                   .count() >= 4),
        timeout=20, message="the webhooks applied",
    )  # fmt: skip
    assert db(lambda: Payment.objects.filter(status="succeeded").count()) == 4
