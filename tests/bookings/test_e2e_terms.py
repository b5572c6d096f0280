"""Issue #28's attacks on the agents' API from outside, with httpx against a real `serve`: every refusal is a JSON
422 (or 413) in the API's error shape naming the field, never a 500 or an HTML page, and nothing is stored."""

import httpx
import pytest

from apps.agents.services import api_token_create
from apps.bookings.models import Booking

pytestmark = pytest.mark.django_db(transaction=True)

BOOKING = {
    "agent_ref": "ATTACK-1",
    "carpark": "TST-1",
    "arrival": "2026-12-01T05:30",
    "departure": "2026-12-08T22:15",
    "customer": {"name": "Mallory"},
    "vehicles": [{"registration": "AB12CDE"}],
}


@pytest.fixture
def api(parkgate, committed_world):
    token = api_token_create(agent_code="tagent")
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"{parkgate.http}/api/v1", timeout=30, headers=headers) as client:
        yield client


def named(response: httpx.Response) -> list:
    assert response.headers["content-type"].startswith("application/json"), response.text[:300]
    payload = response.json()
    assert payload["error"] == "invalid", payload
    return [item["loc"][-1] for item in payload["detail"]]


def test_an_agent_cannot_award_itself_any_commission(api):
    response = api.post("/bookings", json=BOOKING | {"price": "0.00", "commission": "99999999.99"})
    assert response.status_code == 422 and named(response) == ["commission"]
    assert response.json()["detail"][0]["loc"] == ["body", "body", "commission"]  # as a schema error's loc
    assert not Booking.objects.exists()


def test_times_out_of_range_are_json_422s(api):
    for field, value in (("arrival", "9999-12-31T23:59:59"), ("arrival", "0001-01-01T00:00:00")):
        response = api.post("/bookings", json=BOOKING | {field: value})
        assert response.status_code == 422 and named(response) == [field]
        query = {"carpark": "TST-1", "arrival": value, "departure": "2026-12-08T22:15"}
        availability = api.get("/availability", params=query)
        assert availability.status_code == 422 and named(availability) == [field]
    assert not Booking.objects.exists()


def test_a_body_over_the_upload_limit_is_json(api):
    huge = BOOKING | {"customer": {"name": "x" * 3_000_000}}  # past Django's 2.5 MB DATA_UPLOAD_MAX_MEMORY_SIZE
    response = api.post("/bookings", json=huge)
    assert response.status_code == 413, response.text[:300]
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] == "too_large"
