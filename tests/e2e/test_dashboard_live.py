"""The staff dashboard in headless Chromium: its LHR-T5 tile follows a car entering through a lane controller,
both on the process the car enters through and on a second `serve` sharing PostgreSQL and Redis."""

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect, sync_playwright

from apps.bookings.models import Booking, Customer, Vehicle
from apps.carparks.models import CarPark
from apps.core.plates import lookalike_key, normalise
from tests.clients import LaneController, enrol
from tests.support import ARTIFACTS, start_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def second_server(server_env):
    server = start_server(server_env, name="serve-b", worker=False)
    yield server
    server.stop()


def make_booking(plate: str) -> Booking:
    """Test data straight into the tables (the booking services are tested elsewhere)."""
    now = timezone.now()
    booking = Booking.objects.create(
        reference="PG-LIVE01",
        carpark=CarPark.objects.get(code="LHR-T5"),
        customer=Customer.objects.create(name="Live"),
        arrival=now - timedelta(hours=1),
        departure=now + timedelta(days=2),
        source="staff",
        price=10,
        currency="GBP",
    )
    Vehicle.objects.create(
        booking=booking, registration_raw=plate, registration=normalise(plate), lookalike_key=lookalike_key(plate)
    )
    return booking


def test_login_required_then_occupancy_changes_live_on_both_processes(parkgate, second_server, server_env, demo_world):
    make_booking("LV12 ABC")
    device = enrol(parkgate, server_env, "LHR-T5", ["N-IN", "N-OUT"])
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context()
        pages = {}
        for name, server in (("a", parkgate), ("b", second_server)):
            page = context.new_page()
            page.goto(f"{server.http}/dashboard/")
            if "/accounts/login/" in page.url:  # anonymous: sent to the login form
                page.fill("input[name=username]", "demo")
                page.fill("input[name=password]", "demo")
                page.click("button[type=submit]")
            tile = page.locator('[data-carpark="LHR-T5"]')
            expect(tile).to_have_attribute("data-occupancy", "0")
            expect(page.locator("#live")).to_have_text("live")
            pages[name] = page

        async def enter():
            async with LaneController(parkgate, device["token"]) as lane:
                await lane.hello()
                return await lane.read("N-IN", "LV12ABC")

        # Playwright's sync API runs an event loop in this thread: drive the controller from another one.
        with ThreadPoolExecutor(1) as pool:
            decision = pool.submit(asyncio.run, enter()).result(timeout=30)
        assert decision["action"] == "open", decision
        for name, page in pages.items():
            expect(page.locator('[data-carpark="LHR-T5"]')).to_have_attribute("data-occupancy", "1", timeout=2000)
            expect(page.locator('[data-carpark="MAN-T2"]')).to_have_attribute("data-occupancy", "0")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=ARTIFACTS / f"dashboard-live-{name}.png", full_page=True)
        browser.close()
