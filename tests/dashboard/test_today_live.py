"""The "Arrivals today" and "Departures today" tiles in headless Chromium stay current while bookings change
elsewhere: the page is on one `serve`, and a booking by email (applied by a worker), a booking through the agents'
API and the cars' entries and exits go through another `serve`; the no-show sweep runs in the worker."""

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from django.utils import timezone
from playwright.sync_api import expect

from apps.access.models import Visit
from apps.bookings.models import Booking
from apps.core.plates import lookalike_key
from tests.clients import enrol, send_mail
from tests.dashboard.conftest import ThreadedController, browser_login, make_booking
from tests.support import ARTIFACTS, start_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

LONDON = ZoneInfo("Europe/London")
LIVE_MS = 2_000  # the tiles move within a second of a commit; the rest is the browser's (test_browser.py's margin)
WORKER_MS = 10_000  # the same, after the worker picks up the job (an email, the no-show sweep) and commits


@pytest.fixture
def page_server(server_env):
    """The `serve` the page is on: nothing in this test changes anything through it."""
    server = start_server(server_env, name="serve-today-page", worker=False)
    yield server
    server.stop()


def today_times() -> tuple[datetime, datetime]:
    """A local time earlier today and one later today (minutes, as the email says them), whatever the hour."""
    now = timezone.localtime(timezone.now(), LONDON)
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    end = datetime.combine(start.date() + timedelta(days=1), datetime.min.time(), tzinfo=LONDON)
    earlier = (start + (now - start) / 2).replace(second=0, microsecond=0)
    later = (now + (end - now) / 2).replace(second=0, microsecond=0)
    return earlier, later


def in_another_thread(func, *args):
    """Playwright's sync API keeps an event loop in this thread; clients that run their own go elsewhere."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(func, *args).result(timeout=60)


def run_no_show_sweep_in_the_worker() -> None:
    from django.db import connections

    from apps.core.jobs import enqueue

    try:
        enqueue("access.bookings_mark_no_show")  # on_commit: connects to see that there is no transaction
    finally:
        connections.close_all()  # this thread's own, or the test database cannot be dropped at the end


def test_arrivals_and_departures_follow_bookings_cars_and_no_shows_made_through_other_processes(
    parkgate, page_server, server_env, staff, chromium
):
    from apps.agents.services import api_token_create

    staff("olivia", "operator", "LHR-T5")
    earlier, later = today_times()
    yesterday = earlier - timedelta(days=1)
    leaving = make_booking("LHR-T5", "DP11 ART", arrival=yesterday, departure=later, customer="Dora Departing")
    on_site = {"plate": "DP11ART", "lookalike_key": lookalike_key("DP11ART"), "entered_at": yesterday}
    Visit.objects.create(carpark=leaving.carpark, booking=leaving, **on_site)
    # Due to leave later today: the worker's own no-show sweep (every 5 minutes) must not mark it before the test does.
    absent = make_booking("LHR-T5", "NS22 HOW", arrival=yesterday, departure=later, customer="Ned Noshow")
    device = enrol(parkgate, server_env, "LHR-T5", ["N-IN", "N-OUT"])
    token = api_token_create(agent_code="skypark")

    page = chromium.new_context(viewport={"width": 1366, "height": 900}).new_page()
    browser_login(page, page_server, "olivia")
    tile = page.locator('[data-carpark="LHR-T5"]')
    arrivals, departures = tile.locator(".arrivals"), tile.locator(".departures")
    expect(page.locator("#live")).to_have_text("live")
    expect(tile.locator(".arrivals-count")).to_have_text("0 of 0 came")
    expect(departures.locator("li", has_text=absent.reference)).not_to_have_class("done")
    expect(tile.locator(".departures-count")).to_have_text("0 of 2 gone")

    # A booking for today by email: stored by the other `serve`, applied by its worker.
    body = "\n".join(
        [
            "Booking Status: New",
            "Booking Reference: SPX-TODAY1",
            "Car Park: LHR-T5",
            "Customer Name: Emma Emailed",
            f"Drop Off Date: {earlier:%d/%m/%Y}",
            f"Drop Off Time: {earlier:%H:%M}",
            f"Return Date: {later + timedelta(days=3):%d/%m/%Y}",
            f"Return Time: {later:%H:%M}",
            "Registration: EM41 LNG",
            "Total Price: £54.99",
        ]
    )
    assert in_another_thread(lambda: send_mail(parkgate, to="skypark@bookings.parkgate.test", body=body)) == {}
    expect(arrivals.locator("li", has_text="EM41LNG")).to_contain_text("Emma Emailed", timeout=WORKER_MS)
    expect(tile.locator(".arrivals-count")).to_have_text("0 of 1 came")

    # One through the agents' API, on the other `serve`.
    booked = httpx.post(
        f"{parkgate.http}/api/v1/bookings",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "agent_ref": "SPX-TODAY2",
            "carpark": "LHR-T5",
            "arrival": earlier.isoformat(),
            "departure": (later + timedelta(days=2)).isoformat(),
            "customer": {"name": "Arlo Api"},
            "vehicles": [{"registration": "AP12 ILO"}],
        },
    )
    assert booked.status_code == 201, booked.text
    expect(arrivals.locator("li", has_text="AP12ILO")).to_contain_text("Arlo Api", timeout=LIVE_MS)
    expect(tile.locator(".arrivals-count")).to_have_text("0 of 2 came")

    # The emailed car arrives and the departing one leaves, through a lane controller on the other `serve`.
    with ThreadedController(parkgate, device["token"], "cam", {"N-IN": "closed", "N-OUT": "closed"}) as controller:
        assert controller.read("N-IN", "EM41LNG")["action"] == "open"
        expect(arrivals.locator("li", has_text="EM41LNG")).to_have_class("done", timeout=LIVE_MS)
        expect(tile.locator(".arrivals-count")).to_have_text("1 of 2 came")
        assert controller.read("N-OUT", "DP11ART")["action"] == "open"
        expect(departures.locator("li", has_text=leaving.reference)).to_have_class("done", timeout=LIVE_MS)
        expect(tile.locator(".departures-count")).to_have_text("1 of 2 gone")

    # The booking that never came becomes a no-show when the worker's sweep runs after its departure time.
    Booking.objects.filter(pk=absent.pk).update(departure=earlier)
    in_another_thread(run_no_show_sweep_in_the_worker)
    expect(departures.locator("li", has_text=absent.reference)).to_have_class("no-show", timeout=WORKER_MS)
    expect(tile.locator(".departures-count")).to_have_text("1 of 2 gone · 1 no-show")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "dashboard-today-live.png", full_page=True)
