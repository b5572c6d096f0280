"""Staff two-factor sign-in (issue 32): a supervisor sets up an authenticator app at first sign-in and gives its
code at every later one, in Chromium against a real `serve` with STAFF_TWO_FACTOR on; `check --deploy` fails while
a supervisor has no second factor."""

import asyncio

import pyotp
import pytest
import websockets
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.staff import twofactor
from apps.staff.services import staff_member_set
from tests.dashboard.conftest import PASSWORD, chromium, dashboard_socket, login  # noqa: F401  (chromium: the browser)
from tests.support import start_server


@pytest.fixture(scope="module")
def guarded(server_env):
    server = start_server(server_env | {"STAFF_TWO_FACTOR": "1"}, name="serve-2fa", worker=False)
    yield server
    server.stop()


def sign_in(page, server, username: str) -> None:
    page.goto(f"{server.http}/dashboard/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/accounts/two-factor/**")


def test_a_password_alone_opens_no_dashboard_socket(guarded, demo_world):
    staff_member_set(username="sid", password=PASSWORD, carpark_codes=["LHR-T5"], role="supervisor")
    client = login(guarded, "sid")
    assert client.get("/dashboard/").headers["location"].startswith("/accounts/two-factor/")
    with pytest.raises(websockets.InvalidStatus) as refused:
        asyncio.run(dashboard_socket(guarded, client))
    assert refused.value.response.status_code == 403


def test_a_supervisor_signs_in_with_totp(guarded, demo_world, chromium):  # noqa: F811
    staff_member_set(username="sue", password=PASSWORD, carpark_codes=["LHR-T5"], role="supervisor")
    staff_member_set(username="olly", password=PASSWORD, carpark_codes=["LHR-T5"], role="operator")
    page = chromium.new_page()
    sign_in(page, guarded, "sue")
    assert page.locator(".qr svg").count() == 1  # first time: set up the app
    totp = pyotp.TOTP(page.inner_text("#totp-key"))
    assert page.goto(f"{guarded.http}/dashboard/search?q=AB12").url.startswith(f"{guarded.http}/accounts/two-factor/")
    page.fill("input[name=token]", totp.now())
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/search?q=AB12")
    assert TOTPDevice.objects.get(user__username="sue").confirmed

    page.context.clear_cookies()  # signed out: next time only the code is asked for, and a wrong one is refused
    sign_in(page, guarded, "sue")
    assert page.locator(".qr svg").count() == 0
    page.fill("input[name=token]", "000000" if totp.now() != "000000" else "111111")
    page.click("button[type=submit]")
    assert page.locator("[role=alert]").inner_text().startswith("That code is not right")
    page.close()

    operator = chromium.new_page()  # an operator's role needs no second factor
    operator.goto(f"{guarded.http}/dashboard/")
    operator.fill("input[name=username]", "olly")
    operator.fill("input[name=password]", PASSWORD)
    operator.click("button[type=submit]")
    operator.wait_for_url("**/dashboard/")
    operator.close()


def test_check_deploy_fails_while_a_supervisor_has_no_second_factor(db, settings):
    from project.demo import seed_demo

    seed_demo()
    settings.STAFF_TWO_FACTOR = True
    sue = staff_member_set(username="sue", password=PASSWORD, carpark_codes=["LHR-T5"], role="accountant")
    errors = twofactor.supervisors_have_a_second_factor(None)
    assert [e.id for e in errors] == ["parkgate.E011"] and "demo, sue" in errors[0].msg
    for user in (sue, sue.__class__.objects.get(username="demo")):
        TOTPDevice.objects.create(user=user, name="app", confirmed=True)
    assert twofactor.supervisors_have_a_second_factor(None) == []
    settings.STAFF_TWO_FACTOR = False
    assert [e.id for e in twofactor.supervisors_have_a_second_factor(None)] == ["parkgate.E010"]
