"""A customer's trust in a brand's site, in headless Chromium: where the car park is, when it is open, whom to ask,
the policies, and a confirmation email whose links work when the server runs plain HTTP on a port of its own."""

import re
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from django.core.management import call_command
from playwright.sync_api import expect, sync_playwright

from tests.bookings.test_browser import CHROMIUM_ARGS, PHONE, db, local_input, shot
from tests.support import free_port, start_server, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser(demo_world):
    """As test_browser.py's: after the database, as Playwright's loop and Django's ORM do not share a thread."""
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def test_a_customer_sees_where_when_whom_to_ask_and_the_policies(parkgate, demo_world, browser):
    site = f"http://skyline.parkgate.test:{parkgate.http_port}"
    page = browser.new_page(viewport=PHONE)
    elsewhere = []  # no script, style, font or map tile from anywhere but the site itself
    page.on("request", lambda r: None if r.url.startswith(site) else elsewhere.append(r.url))
    page.goto(f"{site}/")
    card = page.locator("[data-carpark-info='MAN-T2']")
    expect(card).to_contain_text("Manchester Airport")  # the address
    expect(card).to_contain_text("Open 24 hours")
    href = card.get_by_role("link", name="Map").get_attribute("href")
    assert href.startswith("https://www.openstreetmap.org/search?query=") and "M90" in href
    footer = page.locator("footer.site-footer")
    expect(footer.get_by_role("link", name="help@skyline.parkgate.test")).to_have_attribute(
        "href", "mailto:help@skyline.parkgate.test"
    )
    expect(footer).to_contain_text("0161 496 0123")
    shot(page, "brand-1-home")

    card.get_by_role("link", name="Directions").click()
    expect(page.locator("h2")).to_have_text("Manchester Terminal 2")
    expect(page.locator("#directions")).to_contain_text("Terminal 2")
    shot(page, "brand-2-carpark")
    for name, heading in [
        ("Terms and conditions", "Terms and conditions"),
        ("Cancellation policy", "Cancellation policy"),
        ("Privacy notice", "Privacy notice"),
    ]:
        with page.expect_navigation() as navigation:
            page.locator("footer.site-footer").get_by_role("link", name=name).click()
        assert navigation.value.status == 200
        expect(page.locator("main h2").first).to_have_text(heading)
        expect(page.locator("main .policy")).not_to_be_empty()
        shot(page, f"brand-3-{name.split()[0].lower()}")
    assert elsewhere == []
    page.close()


class Inbox:
    """An SMTP server the Parkgate under test sends its mail to: what it receives was really sent."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture
def inbox():
    handler = Inbox()
    handler.port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    yield handler
    controller.stop()


def test_the_confirmation_emails_links_work_on_a_plain_http_port(server_env, demo_world, browser, inbox):
    env = {k: v for k, v in server_env.items() if k != "REDIS_URL"}  # its own in-process jobs: no other worker
    server = start_server(env | {"EMAIL_URL": f"smtp://127.0.0.1:{inbox.port}"}, name="brand-links", worker=False)
    try:
        site = f"http://localhost:{server.http_port}"
        db(lambda: call_command("seed_demo", "--base-url", site))  # the demo world for this server's address
        page = browser.new_page(viewport=PHONE)
        page.goto(f"{site}/quote/?carpark=LHR-T5&arrival={local_input(20, 8)}&departure={local_input(22, 18)}")
        page.fill("#id_name", "Jane Smith")
        page.fill("#id_email", "jane@example.com")
        page.fill("#id_phone", "07700 900123")
        page.fill("#id_registration", "AB12CDE")
        page.click("form[action='/book/'] button[type=submit]")
        page.click("#demo-pay #pay-button")  # the demo provider's payment step: no card is charged
        expect(page.locator("#confirmation")).to_be_visible()
        reference = page.locator("#reference").inner_text()
        page.close()

        message = wait_for(lambda: inbox.messages and inbox.messages[0], timeout=30, message="the confirmation email")
        body = message.get_body(("plain",)).get_content()
        links = re.findall(r"https?://\S+", body)
        assert f"{site}/manage/" in links, body
        assert all(link.startswith((site, "https://www.openstreetmap.org/search?query=")) for link in links), links

        page = browser.new_page(viewport=PHONE)  # a fresh browser follows the email's links
        assert page.goto(f"{site}/manage/").status == 200
        page.fill("#id_reference", reference)
        page.fill("#id_email", "jane@example.com")
        page.click("button[type=submit]")
        expect(page.locator("#reference")).to_have_text(reference)
        shot(page, "brand-4-followed-from-email")
        for link in links:
            if link.startswith(site):
                assert page.goto(link).status == 200, link
        page.close()
    finally:
        server.stop()
