"""The staff pages for subject requests, over HTTP against a real `serve`: permission, find, export, erase."""

import re

import pytest
from django.contrib.auth.models import Permission

from apps.bookings.models import Customer
from apps.customers.models import Erasure
from tests.customers.conftest import EMAIL, web_booking
from tests.dashboard.conftest import PASSWORD, login, post


@pytest.fixture
def people(demo_world):
    from apps.carparks.models import Brand
    from apps.staff.services import staff_member_set

    staff_member_set(username="sam", password=PASSWORD, carpark_codes=["LHR-T5"], role="supervisor")
    handler = staff_member_set(username="priya", password=PASSWORD, carpark_codes=["LHR-T5"], role="operator")
    handler.user_permissions.add(Permission.objects.get(codename="handle_subject_requests"))
    return web_booking(Brand.objects.get(code="parkgate-demo"))


def test_staff_find_export_and_erase(parkgate, people):
    assert login(parkgate, "sam").get("/dashboard/customers/").status_code == 403
    client = login(parkgate, "priya")
    page = client.get("/dashboard/customers/", params={"email": EMAIL})
    assert page.status_code == 200 and people.reference in page.text and "Jane Smith" in page.text
    assert "Nobody matches" in client.get("/dashboard/customers/", params={"plate": "ZZ99 ZZZ"}).text

    download = client.get("/dashboard/customers/export", params={"plate": "js05web"})
    assert download.headers["content-disposition"].startswith("attachment")
    assert [b["reference"] for b in download.json()["bookings"]] == [people.reference]

    refused = post(client, "/dashboard/customers/erase", {"email": EMAIL, "reason": "request"})
    assert refused.status_code == 409 and "still to come" in refused.text
    from apps.bookings import services

    services.booking_cancel(booking=people)
    assert post(client, "/dashboard/customers/erase", {"email": EMAIL}).status_code == 400
    done = post(client, "/dashboard/customers/erase", {"email": EMAIL, "reason": "request by phone"})
    assert done.status_code == 200 and re.search(r"bookings.Customer: 1", done.text)
    assert Customer.objects.get(pk=people.customer_id).email == "" and Erasure.objects.get().actor_label == "priya"


def test_staff_list_and_revoke_their_sessions(parkgate, people):
    here, elsewhere = login(parkgate, "priya"), login(parkgate, "priya")
    listed = here.get("/accounts/sessions/")
    ids = re.findall(r'name="session" value="([0-9a-f]{16})"', listed.text)
    assert listed.status_code == 200 and "this browser" in listed.text and len(ids) == 1
    assert post(here, "/accounts/sessions/", {"session": ids[0]}).status_code == 302
    assert elsewhere.get("/dashboard/customers/").status_code == 302  # signed out: to the login page
    assert here.get("/dashboard/customers/").status_code == 200
