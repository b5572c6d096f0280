"""The reports and the forecast through real `serve` processes: permissions per car park in pages and exports,
CSV and XLSX, bad ranges, accepting an allowance; and a supervisor's journey in headless Chromium (screenshots in
the test artifacts)."""

import io

import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect

from apps.insight.history import history_seed
from apps.insight.models import Forecast, OverbookingAllowance
from tests.dashboard.conftest import browser_login, chromium, login, post, staff  # noqa: F401 (fixtures)
from tests.support import ARTIFACTS

pytestmark = pytest.mark.django_db(transaction=True)

REPORTS = ("revenue", "occupancy", "arrivals", "agents")


@pytest.fixture
def seeded(staff):  # noqa: F811 (the fixture imported above)
    staff("sam", "supervisor", "MAN-T2")
    staff("olga", "operator", "MAN-T2")
    staff("lena", "supervisor", "LHR-T5")
    history_seed(days=45, carpark_codes=["MAN-T2"], scale=0.5)


@pytest.mark.browser
def test_reports_permissions_exports_bad_ranges_and_a_supervisor_in_chromium(parkgate, seeded, chromium):  # noqa: F811
    sam = login(parkgate, "sam")
    index = sam.get("/reports/")
    assert index.status_code == 200
    for slug in REPORTS:
        assert f'href="/reports/{slug}/"' in index.text
    assert 'href="/reports/forecast/?carpark=MAN-T2"' in index.text and "LHR-T5" not in index.text

    for slug in REPORTS:
        page = sam.get(f"/reports/{slug}/")
        assert page.status_code == 200, (slug, page.text[:500])
        assert "<svg" in page.text and "<table" in page.text and "cdn" not in page.text.lower()
        csv_ = sam.get(f"/reports/{slug}/", params={"format": "csv"})
        assert csv_.status_code == 200 and csv_.headers["content-type"].startswith("text/csv")
        assert len(csv_.text.splitlines()) > 2, slug
        xlsx = sam.get(f"/reports/{slug}/", params={"format": "xlsx"})
        sheet = load_workbook(io.BytesIO(xlsx.content), read_only=True).worksheets[0]
        header = next(sheet.iter_rows(values_only=True))
        assert list(header) == csv_.text.splitlines()[0].split(","), slug

    by_carpark = sam.get("/reports/revenue/", params={"format": "csv", "by": "carpark", "group": "month"}).text
    assert "MAN-T2" in by_carpark and "LHR-T5" not in by_carpark
    # another car park's figures: as if it did not exist, in pages and exports
    assert sam.get("/reports/occupancy/", params={"carpark": "LHR-T5"}).status_code == 404
    assert sam.get("/reports/revenue/", params={"carpark": "LHR-T5", "format": "csv"}).status_code == 404
    assert sam.get("/reports/forecast/", params={"carpark": "LHR-T5"}).status_code == 404
    # operators see no reports at all
    olga = login(parkgate, "olga")
    assert olga.get("/reports/").status_code == 403
    assert olga.get("/reports/revenue/", params={"format": "csv"}).status_code == 403

    reversed_ = sam.get("/reports/revenue/", params={"start": "2026-03-01", "end": "2026-02-01"})
    assert reversed_.status_code == 400 and "is after the end date" in reversed_.text
    too_long = sam.get("/reports/occupancy/", params={"start": "2025-01-01", "end": "2026-01-01"})
    assert too_long.status_code == 400 and "at most 62 days" in too_long.text
    garbled = sam.get("/reports/agents/", params={"start": "yesterday"})
    assert garbled.status_code == 400 and "YYYY-MM-DD" in garbled.text

    # the forecast; a car park with no history says so
    page = sam.get("/reports/forecast/", params={"carpark": "MAN-T2"})
    assert page.status_code == 200 and "Forecast for MAN-T2" in page.text and "Recommended overbooking" in page.text
    lena = login(parkgate, "lena")
    empty = lena.get("/reports/forecast/", params={"carpark": "LHR-T5"})
    assert empty.status_code == 200 and "has no history yet" in empty.text

    # accepting: supervisors of the car park only, within the recommendation, audited
    made = Forecast.objects.filter(carpark__code="MAN-T2").latest("made_at")
    rec = next(r for r in made.recommendations if r["spaces"] > 0)
    form = {"carpark": "MAN-T2", "forecast": made.pk, "date": rec["date"], "channel": rec["channel"]}
    assert post(olga, "/reports/forecast/accept", {**form, "spaces": rec["spaces"]}).status_code == 403
    assert post(sam, "/reports/forecast/accept", {**form, "spaces": rec["spaces"] + 5}).status_code == 302
    assert not OverbookingAllowance.objects.exists()
    assert post(sam, "/reports/forecast/accept", {**form, "spaces": rec["spaces"]}).status_code == 302
    assert OverbookingAllowance.objects.get().spaces == rec["spaces"]

    # today's forecast line for the dashboard: operators of the car park too, nobody else
    line = olga.get("/reports/forecast/today", params={"carpark": "MAN-T2"}).json()
    assert 1 <= len(line["hours"]) <= 25 and all(low <= mid <= high for _, mid, low, high in line["hours"])
    assert lena.get("/reports/forecast/today", params={"carpark": "MAN-T2"}).status_code == 404

    # a supervisor's journey in Chromium (same data: one seeding for both halves of the test budget)
    page = chromium.new_page(viewport={"width": 1366, "height": 900})
    browser_login(page, parkgate, "sam")
    page.goto(f"{parkgate.http}/reports/")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "reports-index.png", full_page=True)
    for slug in REPORTS:
        page.goto(f"{parkgate.http}/reports/")
        page.click(f'a[href="/reports/{slug}/"]')
        expect(page.locator("figure.chart svg")).to_be_visible()
        expect(page.locator("table").first).to_be_visible()
        page.screenshot(path=ARTIFACTS / f"reports-{slug}.png", full_page=True)
        with page.expect_download() as download:
            page.click("text=CSV")
        assert download.value.suggested_filename.endswith(".csv")
    page.goto(f"{parkgate.http}/reports/")
    page.click("text=Forecast for MAN-T2")
    expect(page.locator("figure.chart svg")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "reports-forecast.png", full_page=True)
    page.locator("button[data-accept]").first.click()
    expect(page.locator(".notice")).to_contain_text("Accepted")
    assert OverbookingAllowance.objects.count() >= 1
    # the dashboard draws today's forecast line beside the live count
    page.goto(f"{parkgate.http}/dashboard/")
    expect(page.locator('[data-carpark="MAN-T2"] .chart .forecast-line')).to_have_count(1)
    page.screenshot(path=ARTIFACTS / "reports-dashboard-forecast-line.png", full_page=True)
    phone = chromium.new_page(viewport={"width": 390, "height": 844})
    browser_login(phone, parkgate, "sam")
    phone.goto(f"{parkgate.http}/reports/occupancy/")
    expect(phone.locator("figure.chart svg")).to_be_visible()
    phone.screenshot(path=ARTIFACTS / "reports-occupancy-phone.png", full_page=True)
