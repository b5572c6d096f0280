"""The staff dashboard in headless Chromium (Playwright, Debian's chromium), against real `serve` processes on
PostgreSQL and Redis, with a real lane controller over `websockets`. Screenshots land in test-artifacts/."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from apps.access.models import Alert, Device, Visit
from apps.core.models import AuditLog
from tests.clients import enrol
from tests.dashboard.conftest import ThreadedController, browser_login, make_booking
from tests.support import ARTIFACTS, Process, Server, free_port, start_server, wait_for, wait_ready

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def second_server(server_env):
    server = start_server(server_env, name="serve-dash-b", worker=False)
    yield server
    server.stop()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"dashboard-{name}.png", full_page=True)


def tile(page, code: str = "LHR-T5"):
    return page.locator(f'[data-carpark="{code}"]')


def test_live_dashboard_snapshot_deltas_alerts_barrier_and_search(parkgate, second_server, server_env, staff, chromium):
    staff("olivia", "operator", "LHR-T5", "MAN-T2")
    arriving = make_booking("LHR-T5", "LV12 ABC", customer="Ada Arriving")
    late = make_booking(
        "LHR-T5",
        "OV11 ERS",
        customer="Otto Overstay",
        arrival=timezone.now() - timedelta(days=3),
        departure=timezone.now() - timedelta(hours=3),
    )
    Visit.objects.create(
        carpark=late.carpark, plate="OV11ERS", lookalike_key="0V11ER5", entered_at=late.arrival, booking=late
    )
    device = enrol(parkgate, server_env, "LHR-T5", ["N-IN", "N-OUT"])

    desktop = chromium.new_context(viewport=DESKTOP)
    phone = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page, mobile = desktop.new_page(), phone.new_page()
    browser_login(page, parkgate, "olivia")
    browser_login(mobile, second_server, "olivia")  # a second `serve` process sharing PostgreSQL and Redis
    for p in (page, mobile):
        expect(p.locator("#live")).to_have_text("live")
        expect(tile(p)).to_have_attribute("data-occupancy", "1")
        expect(tile(p, "MAN-T2")).to_have_attribute("data-occupancy", "0")
        expect(tile(p).locator(".overstays")).to_contain_text("OV11ERS")
        expect(tile(p).locator(".arrivals li", has_text=arriving.reference)).not_to_have_class("done")

    with ThreadedController(parkgate, device["token"], "cam", {"N-IN": "closed", "N-OUT": "closed"}) as controller:
        lane_out = tile(page).locator(".lane", has_text="N-OUT")
        expect(lane_out.locator(".badge.ok")).to_have_text("online")
        expect(lane_out).to_contain_text("barrier closed")

        # a car with a booking enters: occupancy, chart, reads and arrivals update live on both processes
        decision = controller.read("N-IN", "LV12ABC")
        assert decision["action"] == "open", decision
        for p in (page, mobile):
            expect(tile(p)).to_have_attribute("data-occupancy", "2", timeout=2000)
            expect(tile(p).locator(".occ .n")).to_have_text("2")
            expect(tile(p).locator(".reads tbody tr").first).to_contain_text("LV12ABC")
            expect(tile(p).locator(".reads tbody tr").first).to_contain_text("booking")
            expect(tile(p).locator(".arrivals li", has_text=arriving.reference)).to_have_class("done")
        expect(tile(page, "MAN-T2")).to_have_attribute("data-occupancy", "0")

        # an unknown car is denied: an alert that the operator acknowledges
        denied = controller.read("N-IN", "UNK 999")
        assert denied["action"] == "deny", denied
        alert_row = tile(page).locator(".alerts li", has_text="UNK999")
        expect(alert_row).to_contain_text("unknown vehicle")
        expect(tile(mobile).locator(".alerts li", has_text="UNK999")).to_be_visible()
        shot(page, "desktop")
        shot(mobile, "phone")
        alert_row.get_by_role("button", name="Acknowledge").click()
        expect(alert_row).to_have_count(0)
        expect(tile(mobile).locator(".alerts li", has_text="UNK999")).to_have_count(0)
        alert = Alert.objects.get(plate="UNK999")
        assert alert.acknowledged_by.username == "olivia"

        # manual barrier open: a reason is required; the controller's result shows on screen
        page.get_by_role("button", name="Open barrier at LHR-T5 N-OUT").click()
        dialog = page.locator("#open-dialog")
        expect(dialog).to_be_visible()
        dialog.get_by_role("button", name="Open barrier").click()  # no reason: nothing is sent
        expect(dialog).to_be_visible()
        assert controller.commands == []
        page.fill("#open-reason", "ticket machine broken, driver paid at desk")
        shot(page, "open-dialog")
        dialog.get_by_role("button", name="Open barrier").click()
        expect(lane_out.locator(".command-status")).to_contain_text("done", timeout=5000)
        expect(lane_out.locator(".command-status")).to_contain_text("olivia")
        assert controller.commands and controller.commands[-1]["lane"] == "N-OUT"
        audit = AuditLog.objects.get(action="barrier.open_manual")
        assert audit.actor.username == "olivia" and audit.actor_label == "olivia"
        assert "ticket machine broken" in audit.data["reason"]
        shot(page, "barrier-done")

        controller.answer = "failed"  # the arm is jammed: the controller says so, and the operator sees it
        page.get_by_role("button", name="Open barrier at LHR-T5 N-IN").click()
        page.fill("#open-reason", "driver stuck at the entry")
        dialog.get_by_role("button", name="Open barrier").click()
        lane_in = tile(page).locator(".lane", has_text="N-IN")
        expect(lane_in.locator(".command-status")).to_contain_text("failed", timeout=5000)

    # the controller hung up: the server marks it offline at once (checked first, so that a failure says which side
    # lagged), its lanes show offline, and the button is disabled
    wait_for(
        lambda: not Device.objects.get(pk=device["device_id"]).online, 5, message="the server marked the device offline"
    )
    expect(lane_out.locator(".badge.bad")).to_have_text("offline", timeout=5000)
    expect(page.get_by_role("button", name="Open barrier at LHR-T5 N-OUT")).to_be_disabled()

    # search a plate (any spacing): the booking, its visit and its reads
    page.fill("#q", "lv12 abc")
    page.keyboard.press("Enter")
    page.wait_for_url("**/dashboard/search?q=*")
    expect(page.locator("tr.booking")).to_contain_text(arriving.reference)
    expect(page.locator("tr.visit")).to_contain_text("on site")
    expect(page.locator("tr.read").first).to_contain_text("open")
    shot(page, "search")
    desktop.close()
    phone.close()


def test_page_reconnects_and_resyncs_after_a_server_restart(server_env, staff, chromium):
    staff("olivia", "operator", "LHR-T5")
    http_port, smtp_port = free_port(), free_port()
    args = ["serve", "--http", f"127.0.0.1:{http_port}", "--smtp", f"127.0.0.1:{smtp_port}"]
    server = Server(http_port, smtp_port, [Process(args, server_env, "serve-dash-restart").start()])
    wait_ready(server, 30)
    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    try:
        browser_login(page, server, "olivia")
        expect(page.locator("#live")).to_have_text("live")
        expect(tile(page)).to_have_attribute("data-occupancy", "0")
        server.stop()

        expect(page.locator("#live")).to_have_text("offline: reconnecting…", timeout=5000)
        expect(page.locator("#offline-note")).to_contain_text("Offline since")
        shot(page, "offline")
        booking = make_booking("LHR-T5", "RS12 ABC")  # changes while the page is offline
        now = timezone.now()
        Visit.objects.create(carpark=booking.carpark, plate="RS12ABC", lookalike_key="R512A8C", entered_at=now)

        server = Server(http_port, smtp_port, [Process(args, server_env, "serve-dash-restart").start()])
        wait_ready(server, 30)
        expect(page.locator("#live")).to_have_text("live", timeout=40000)
        expect(tile(page)).to_have_attribute("data-occupancy", "1")
        expect(page.locator("#offline-note")).to_contain_text("resynchronised")
        shot(page, "reconnected")
    finally:
        context.close()
        server.stop()
