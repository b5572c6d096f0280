"""The agents' REST API (docs/operations.md 5) through Django's test client: auth, scoping, errors, idempotency,
pagination, local times and the per-token rate limit. The API's services run on other threads and connections,
so these tests commit (transaction=True)."""

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.test import Client, override_settings

from apps.agents.models import ApiToken
from apps.agents.services import api_token_create, api_token_revoke
from apps.bookings.models import Booking

pytestmark = pytest.mark.django_db(transaction=True)


def client_for(agent_code: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {api_token_create(agent_code=agent_code)}")


def body(**overrides) -> dict:
    return {
        "agent_ref": "SPX-104233",
        "carpark": "TST-1",
        "arrival": "2026-12-01T05:30",
        "departure": "2026-12-08T22:15",
        "customer": {"name": "Jane Smith", "email": "jane@example.com", "phone": "07700900123"},
        "vehicles": [{"registration": "ab12 cde", "make": "Ford", "model": "Focus", "colour": "Blue"}],
        "flights": {"outbound": "BA0117", "return": "BA0118"},
        **overrides,
    }


def post(client: Client, path: str, data, **headers):
    raw = data if isinstance(data, str) else json.dumps(data)
    return client.post(f"/api/v1{path}", raw, content_type="application/json", headers=headers)


def patch(client: Client, path: str, data):
    return client.patch(f"/api/v1{path}", json.dumps(data), content_type="application/json")


def assert_error(response, status: int, error: str):
    assert response.status_code == status, response.content
    payload = response.json()
    assert payload["error"] == error and "detail" in payload, payload


@pytest.fixture
def agent(committed_world) -> Client:
    return client_for("tagent")


def test_create_then_get_by_either_reference(agent):
    created = post(agent, "/bookings", body())
    assert created.status_code == 201, created.content
    b = created.json()
    assert b["reference"].startswith("PG-") and b["agent_ref"] == "SPX-104233" and b["carpark"] == "TST-1"
    assert (b["arrival"], b["departure"]) == ("2026-12-01T05:30:00Z", "2026-12-08T22:15:00Z")  # GMT in December
    assert b["vehicles"] == [{"registration": "AB12CDE", "make": "Ford", "model": "Focus", "colour": "Blue"}]
    assert b["flights"] == {"outbound": "BA0117", "return": "BA0118", "return_estimated": None, "return_status": None}
    assert (b["price"], b["currency"], b["status"], b["overbooked"]) == ("95.00", "GBP", "confirmed", False)
    assert b["created_at"].endswith("Z") and b["updated_at"].endswith("Z")
    assert agent.get(f"/api/v1/bookings/{b['reference']}").json() == b
    assert agent.get("/api/v1/bookings/SPX-104233").json() == b
    assert Booking.objects.get(reference=b["reference"]).source == "api"


def test_minimal_create_and_given_price(agent):
    minimal = {k: body()[k] for k in ("agent_ref", "carpark", "arrival", "departure")}
    minimal |= {"customer": {"name": "J"}, "vehicles": [{"registration": "XY51ABC"}], "price": "54.99"}
    created = post(agent, "/bookings", minimal)
    assert created.status_code == 201, created.content
    assert created.json()["price"] == "54.99" and created.json()["flights"] == {
        "outbound": "",
        "return": "",
        "return_estimated": None,
        "return_status": None,
    }


def test_authentication(committed_world):
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer nope"}, {"HTTP_AUTHORIZATION": "Basic eDp5"}):
        assert_error(Client(**headers).get("/api/v1/bookings"), 401, "unauthorized")
    token = api_token_create(agent_code="tagent")
    assert Client(HTTP_AUTHORIZATION=f"Bearer {token}").get("/api/v1/bookings").status_code == 200
    api_token_revoke(token_id=ApiToken.objects.get().pk)
    assert_error(Client(HTTP_AUTHORIZATION=f"Bearer {token}").get("/api/v1/bookings"), 401, "unauthorized")
    assert ApiToken.objects.get().token_hash != token  # stored hashed


def test_an_agent_sees_only_its_own_bookings(agent, committed_world):
    ref = post(agent, "/bookings", body(carpark="TINY")).json()["reference"]
    other = client_for("oagent")
    assert_error(other.get(f"/api/v1/bookings/{ref}"), 404, "not_found")
    assert_error(other.get("/api/v1/bookings/SPX-104233"), 404, "not_found")
    assert_error(patch(other, f"/bookings/{ref}", {"customer": {"name": "X"}}), 404, "not_found")
    assert_error(post(other, f"/bookings/{ref}/cancel", {}), 404, "not_found")
    assert other.get("/api/v1/bookings").json() == {"items": [], "next": None}
    # the same agent_ref is free for another agent
    assert post(other, "/bookings", body(carpark="TINY")).status_code == 201


def test_contracted_car_parks_only(agent, committed_world):
    other = client_for("oagent")
    assert_error(post(other, "/bookings", body(carpark="TST-1")), 403, "not_contracted")
    assert_error(
        other.get(
            "/api/v1/availability", {"carpark": "TST-1", "arrival": "2026-12-01T10:00", "departure": "2026-12-02T10:00"}
        ),
        403,
        "not_contracted",
    )
    assert_error(post(agent, "/bookings", body(carpark="NOPE")), 422, "unknown_carpark")
    assert [c["code"] for c in other.get("/api/v1/carparks").json()] == ["TINY"]


def test_availability(agent):
    q = {"carpark": "TINY", "arrival": "2026-12-01T10:00", "departure": "2026-12-02T09:00"}
    assert agent.get("/api/v1/availability", q).json() == {
        "available": True,
        "spaces_left": 2,
        "price": "10.00",
        "currency": "GBP",
        "days": 2,
        "products": [  # a car park made without products sells its default one (apps.products.receivers)
            {
                "code": "STD",
                "name": "Parking",
                "spaces_left": 2,
                "fares": [{"code": "flex", "price": "10.00", "refundable": True}],
            }
        ],
    }
    post(agent, "/bookings", body(carpark="TINY", arrival="2026-12-02T08:00", departure="2026-12-02T20:00"))
    assert agent.get("/api/v1/availability", q).json()["spaces_left"] == 1
    post(
        agent,
        "/bookings",
        body(agent_ref="B", carpark="TINY", arrival="2026-12-02T08:00", departure="2026-12-02T20:00"),
    )
    full = agent.get("/api/v1/availability", q).json()
    assert (full["available"], full["spaces_left"]) == (False, 0)


def test_full_and_duplicate_are_conflicts(agent):
    stay = {"carpark": "TINY", "arrival": "2026-12-01T10:00", "departure": "2026-12-02T10:00"}
    assert post(agent, "/bookings", body(agent_ref="A", **stay)).status_code == 201
    assert post(agent, "/bookings", body(agent_ref="B", **stay)).status_code == 201
    assert_error(post(agent, "/bookings", body(agent_ref="C", **stay)), 409, "no_capacity")
    assert_error(post(agent, "/bookings", body(agent_ref="A", carpark="TST-1")), 409, "duplicate_agent_ref")


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("arrival", "2026-03-29T01:30", "nonexistent_local_time"),  # clocks go forward at 01:00
        ("arrival", "2026-10-25T01:30", "ambiguous_local_time"),  # 01:30 happens twice
        ("arrival", "soon", "invalid_datetime"),
        ("departure", "2026-11-30T10:00", "invalid"),  # before arrival
    ],
)
def test_bad_times(agent, field, value, error):
    assert_error(post(agent, "/bookings", body(**{field: value})), 422, error)


def test_times_with_offsets_are_taken_as_given(agent):
    b = post(agent, "/bookings", body(arrival="2026-07-01T05:30:00+01:00", departure="2026-07-02T10:00:00Z")).json()
    assert (b["arrival"], b["departure"]) == ("2026-07-01T04:30:00Z", "2026-07-02T10:00:00Z")


def test_bad_input_is_never_a_500(agent):
    assert_error(post(agent, "/bookings", "{not json"), 400, "bad_request")
    assert_error(post(agent, "/bookings", {"agent_ref": "x"}), 422, "invalid")
    assert_error(post(agent, "/bookings", body(vehicles=[])), 422, "invalid")
    assert_error(post(agent, "/bookings", body(vehicles=[{"registration": "--"}])), 422, "invalid")
    assert_error(post(agent, "/bookings", body(price="-3")), 422, "invalid")
    assert_error(post(agent, "/bookings", body(customer={"name": "A\u0000B"})), 422, "invalid")
    assert_error(agent.get("/api/v1/bookings/PG-\u0000"), 404, "not_found")
    assert_error(agent.get("/api/v1/bookings", {"cursor": "%%%"}), 422, "invalid_cursor")
    assert_error(agent.get("/api/v1/bookings", {"limit": 0}), 422, "invalid")
    assert_error(agent.get("/api/v1/no/such/thing"), 404, "not_found")


def test_idempotency_key(agent, committed_world):
    first = post(agent, "/bookings", body(), **{"Idempotency-Key": "k-1"})
    again = post(agent, "/bookings", body(), **{"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert Booking.objects.count() == 1
    assert_error(
        post(agent, "/bookings", body(agent_ref="OTHER"), **{"Idempotency-Key": "k-1"}), 422, "idempotency_key_reused"
    )
    # a refusal is replayed too, and keys are scoped to the agent
    dup = post(agent, "/bookings", body(), **{"Idempotency-Key": "k-2"})
    assert_error(dup, 409, "duplicate_agent_ref")
    assert post(agent, "/bookings", body(), **{"Idempotency-Key": "k-2"}).json() == dup.json()
    other = client_for("oagent")
    assert post(other, "/bookings", body(carpark="TINY"), **{"Idempotency-Key": "k-1"}).status_code == 201


def test_amend_reprices_and_rechecks_capacity(agent):
    ref = post(agent, "/bookings", body(carpark="TINY", arrival="2026-12-01T10:00", departure="2026-12-01T12:00"))
    ref = ref.json()["reference"]
    amended = patch(
        agent,
        f"/bookings/{ref}",
        {"departure": "2026-12-03T12:00", "customer": {"phone": "0123"}, "vehicles": [{"registration": "xy51 abc"}]},
    )
    assert amended.status_code == 200, amended.content
    a = amended.json()
    assert (a["departure"], a["price"], a["customer"]["phone"], a["customer"]["name"]) == (
        "2026-12-03T12:00:00Z",
        "15.00",
        "0123",
        "Jane Smith",
    )
    assert [v["registration"] for v in a["vehicles"]] == ["XY51ABC"]
    for n in range(2):
        post(
            agent,
            "/bookings",
            body(agent_ref=f"F{n}", carpark="TINY", arrival="2026-12-05T10:00", departure="2026-12-05T12:00"),
        )
    assert_error(patch(agent, f"/bookings/{ref}", {"departure": "2026-12-05T11:00"}), 409, "no_capacity")
    assert agent.get(f"/api/v1/bookings/{ref}").json()["departure"] == "2026-12-03T12:00:00Z"


def test_cancel(agent):
    ref = post(agent, "/bookings", body()).json()["reference"]
    first = post(agent, f"/bookings/{ref}/cancel", {})
    assert first.status_code == 200 and first.json()["status"] == "cancelled"
    again = post(agent, "/bookings/SPX-104233/cancel", {})
    assert again.status_code == 200 and again.json() == first.json()
    arrived = post(agent, "/bookings", body(agent_ref="ARR")).json()["reference"]
    Booking.objects.filter(reference=arrived).update(status="arrived")
    assert_error(post(agent, f"/bookings/{arrived}/cancel", {}), 409, "already_arrived")


def test_list_pages_by_updated_at(agent):
    refs = [post(agent, "/bookings", body(agent_ref=f"L{n}")).json()["reference"] for n in range(5)]
    seen, url = [], "/api/v1/bookings?limit=2"
    while url:
        page = agent.get(url).json()
        seen += [b["reference"] for b in page["items"]]
        url = page["next"]
        assert url is None or url.startswith("http://testserver/api/v1/bookings?")
    assert seen == refs
    newest = Booking.objects.get(reference=refs[-1]).updated_at.isoformat()
    since = agent.get("/api/v1/bookings", {"updated_since": newest}).json()
    assert [b["reference"] for b in since["items"]] == [refs[-1]]  # inclusive
    assert_error(agent.get("/api/v1/bookings", {"updated_since": "2026-01-01T00:00"}), 422, "invalid_datetime")


@override_settings(API_RATE_LIMIT_PER_MINUTE=3)
def test_rate_limit_per_token(agent, committed_world):
    statuses = [agent.get("/api/v1/carparks").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = agent.get("/api/v1/carparks")
    assert_error(limited, 429, "rate_limited")
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert client_for("tagent").get("/api/v1/carparks").status_code == 200  # another token, its own budget


def test_openapi_and_docs_are_served(committed_world):
    schema = Client().get("/api/v1/openapi.json").json()
    assert {
        "/api/v1/availability",
        "/api/v1/bookings",
        "/api/v1/bookings/{ref}",
        "/api/v1/bookings/{ref}/cancel",
    } <= set(schema["paths"])
    docs = Client().get("/api/v1/docs")
    assert docs.status_code == 200 and "/static/ninja/swagger-ui-bundle.js" in docs.text  # served by us, no CDN
    assert Client().get("/static/ninja/swagger-ui-bundle.js").status_code == 200


def test_create_api_token_command(committed_world):
    out = io.StringIO()
    call_command("create_api_token", "--agent", "tagent", "--name", "engine", stdout=out)
    token = out.getvalue().strip().splitlines()[-1]
    assert token.startswith("pgk_") and " " not in token
    assert Client(HTTP_AUTHORIZATION=f"Bearer {token}").get("/api/v1/carparks").status_code == 200
    with pytest.raises(CommandError) as unknown:
        call_command("create_api_token", "--agent", "nobody")
    assert unknown.value.returncode == 1
