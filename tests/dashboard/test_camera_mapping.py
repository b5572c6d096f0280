"""A supervisor maps a vendor camera to a lane on the dashboard (issue #27, item 5), in headless Chromium against a
real `serve`; the camera posts over HTTP (httpx) as it would. Screenshots land in test-artifacts/."""

import httpx
import pytest
from playwright.sync_api import expect

from apps.access import services
from apps.access.models import Alert, Device, PlateRead
from tests.dashboard.conftest import browser_login
from tests.dashboard.test_browser import DESKTOP, shot, tile
from tests.lanes.test_vendors import platerecognizer_sample
from tests.support import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_a_supervisor_maps_an_unmapped_camera_and_its_kept_read_is_decided(parkgate, staff, chromium):
    staff("sue", "supervisor", "LHR-T5")
    staff("olivia", "operator", "LHR-T5")
    device, issued = services.device_create(carpark_code="LHR-T5", lane_codes=["N-IN", "N-OUT"], name="gate cams")
    token = services.device_enrol(code=issued.code).token
    pushed = httpx.post(
        f"{parkgate.http}/api/device/v1/platerecognizer",
        content=platerecognizer_sample(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert pushed.status_code == 202, pushed.text

    context = chromium.new_context(viewport=DESKTOP)
    operator, page = context.new_page(), chromium.new_context(viewport=DESKTOP).new_page()
    browser_login(operator, parkgate, "olivia")
    camera_row = tile(operator).locator(".cameras li", has_text="camera-1")
    expect(camera_row).to_contain_text("not mapped")
    expect(camera_row).to_contain_text("1 read kept")
    expect(camera_row.locator("select")).to_have_count(0)  # operators see it, only supervisors map it
    context.close()

    browser_login(page, parkgate, "sue")
    expect(page.locator("#live")).to_have_text("live")
    expect(tile(page).locator(".alerts li", has_text="9JUB11")).to_contain_text("unmapped camera")
    camera_row = tile(page).locator(".cameras li", has_text="camera-1")
    expect(camera_row).to_contain_text("not mapped")
    shot(page, "camera-unmapped")
    camera_row.get_by_label("Lane for camera camera-1 of gate cams").select_option("N-IN")
    camera_row.get_by_role("button", name="Map camera camera-1").click()

    camera_row = tile(page).locator(".cameras li", has_text="camera-1")
    expect(camera_row).to_contain_text("N-IN", timeout=5000)
    expect(camera_row).not_to_contain_text("not mapped")
    expect(tile(page).locator(".reads tbody tr").first).to_contain_text("9JUB11", timeout=10000)  # decided, live
    expect(tile(page).locator(".alerts li", has_text="unmapped camera")).to_have_count(0)  # acknowledged by it
    expect(camera_row).not_to_contain_text("read")  # none kept any more
    shot(page, "camera-mapped")
    read = wait_for(lambda: PlateRead.objects.filter(plate="9JUB11").select_related("lane").first())
    assert read.lane.code == "N-IN"
    assert Device.objects.get(pk=device.id).settings == {"cameras": {"camera-1": "N-IN"}}
    assert Alert.objects.get(reason="unmapped_camera").acknowledged_by.username == "sue"
    page.context.close()
