"""Content-Security-Policy (issue #28, 8): every response carries it (`script-src 'self'`: the project serves its own
scripts), and no page of the customer site, the staff dashboard, the admin or the API docs breaks under it (headless
Chromium reports no violation)."""

import httpx
import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from apps.carparks.models import CarPark
from tests.dashboard.conftest import PASSWORD, browser_login, chromium  # noqa: F401  (chromium: a fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_every_response_carries_the_policy(parkgate, demo_world):
    for path in ("/", "/quote/", "/manage/", "/no-such-page/", "/accounts/login/", "/admin/login/", "/api/v1/docs"):
        policy = httpx.get(f"{parkgate.http}{path}").headers.get("Content-Security-Policy", "")
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("style-src")[0], path
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy, path


@pytest.fixture
def superuser(demo_world):
    """Before Chromium starts: a user saved under Playwright's running loop cannot send its events."""
    return get_user_model().objects.create_superuser("csp-admin", "csp@example.com", PASSWORD)


def test_no_page_violates_the_policy(parkgate, superuser, chromium):  # noqa: F811
    violations: list[str] = []

    def visit(page, path: str, status: int = 200) -> None:
        response = page.goto(f"{parkgate.http}{path}")
        page.wait_for_load_state("networkidle")
        assert response.status == status, path
        assert "script-src 'self'" in (response.headers.get("content-security-policy") or ""), path

    def watch(page):
        page.on(
            "console",
            lambda msg: violations.append(f"{page.url}: {msg.text}") if "Content Security Policy" in msg.text else None,
        )
        return page

    customer = watch(chromium.new_page())
    for path in ("/", "/manage/"):
        visit(customer, path)
    visit(customer, "/quote/", status=400)  # the quote form without its fields: shown again with the errors

    staff = watch(chromium.new_page())
    browser_login(staff, parkgate, "demo", "demo")
    expect(staff.locator("#live")).to_have_text("live")  # its script ran and its WebSocket connected
    for path in ("/dashboard/search?q=AB12", "/dashboard/lockouts"):
        visit(staff, path)

    admin = watch(chromium.new_page())
    admin.goto(f"{parkgate.http}/admin/login/")
    admin.fill("input[name=username]", "csp-admin")
    admin.fill("input[name=password]", PASSWORD)
    admin.click("input[type=submit]")
    admin.wait_for_url("**/admin/")
    carpark = CarPark.objects.get(code="LHR-T5").pk
    for path in ("/admin/", "/admin/auth/user/", "/admin/auth/user/add/", f"/admin/carparks/carpark/{carpark}/change/"):
        visit(admin, path)
    for path in ("/admin/axes/accessattempt/", "/admin/axes/accessfailurelog/", "/accounting/", "/api/v1/docs"):
        visit(admin, path)
    admin.locator(".swagger-ui .info").wait_for()  # Swagger UI rendered under the policy

    assert violations == []
