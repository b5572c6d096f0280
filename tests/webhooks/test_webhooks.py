"""Outbound webhooks from outside the process: a real `serve` + `worker` (the `parkgate` fixture), bookings made
through the agents' API and a lane controller, and a real HTTP receiver run here (receiver.py). Signatures are
checked with the Standard Webhooks reference implementation (`standardwebhooks`). The test run sets
WEBHOOKS_ALLOW_PRIVATE=1 (the receiver is on loopback), a 1 s timeout and 0.2 s first retry (tests/envdefaults.py)."""

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from apps.agents.models import Agent
from apps.agents.services import api_token_create
from apps.webhooks import services
from apps.webhooks.models import Attempt, Delivery, Endpoint
from tests.clients import LaneController, enrol
from tests.support import ARTIFACTS, wait_for
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.django_db(transaction=True)

BOOKING_EVENTS = ["booking.created", "booking.amended", "booking.cancelled", "booking.arrived", "booking.departed"]


def z(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


@pytest.fixture
def agent_api(parkgate, demo_world):
    token = api_token_create(agent_code="skypark")
    with httpx.Client(base_url=f"{parkgate.http}/api/v1", headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def book(api: httpx.Client, ref: str, plate: str) -> dict:
    now = datetime.now(UTC)
    body = {
        "agent_ref": ref,
        "carpark": "LHR-T5",
        "arrival": z(now - timedelta(minutes=30)),
        "departure": z(now + timedelta(days=2)),
        "customer": {"name": "Ann Lee"},
        "vehicles": [{"registration": plate}],
    }
    response = api.post("/bookings", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def subscribe(api: httpx.Client, url: str, events: list[str]) -> dict:
    response = api.post("/webhooks", json={"url": url, "events": events})
    assert response.status_code == 201, response.text
    return response.json()


def verified(received, secret: str) -> dict:
    """The payload, after the reference implementation has checked its signature and timestamp."""
    return Webhook(secret).verify(received.body, received.headers)


def by_id(received: list) -> list:
    """One per webhook-id (a receiver that timed out may have got a late copy too), first arrival first."""
    seen, out = set(), []
    for r in received:
        if r.headers["webhook-id"] not in seen:
            seen.add(r.headers["webhook-id"])
            out.append(r)
    return out


def test_an_agents_endpoint_gets_its_bookings_events_signed_in_order_with_the_apis_booking_json(
    parkgate, server_env, agent_api, receiver, settings
):
    created = subscribe(agent_api, receiver.url("/hooks"), BOOKING_EVENTS)
    assert set(created) == {"id", "url", "events", "secret"}
    assert created["secret"].startswith("whsec_") and created["events"] == BOOKING_EVENTS
    listed = agent_api.get("/webhooks").json()
    assert [(e["id"], e["url"], e["active"]) for e in listed] == [(created["id"], receiver.url("/hooks"), True)]
    assert "secret" not in listed[0]
    # The operator's endpoint (staff, in the admin) gets every booking's events; another agent's gets none of these.
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    services.endpoint_create(url=receiver.url("/operator"), events=["booking.created"], agent_id=None)
    other = Agent.objects.get(code="holidayx")
    services.endpoint_create(url=receiver.url("/other"), events=["booking.created"], agent_id=other.pk)

    first = book(agent_api, "WH-1", "WH11 AAA")
    amended = agent_api.patch(f"/bookings/{first['reference']}", json={"flights": {"outbound": "BA123"}})
    assert amended.status_code == 200
    second = book(agent_api, "WH-2", "WH22 BBB")
    assert agent_api.post(f"/bookings/{second['reference']}/cancel").status_code == 200
    device = enrol(parkgate, server_env, "LHR-T5", ["N-IN", "N-OUT"])

    async def drive():
        async with LaneController(parkgate, device["token"]) as lane:
            await lane.hello()
            assert (await lane.read("N-IN", "WH11AAA"))["action"] == "open"
            assert (await lane.read("N-OUT", "WH11AAA"))["action"] == "open"

    asyncio.run(drive())
    hooks = wait_for(lambda: len(by_id(receiver.at("/hooks"))) >= 6 and by_id(receiver.at("/hooks")), timeout=45)
    payloads = [verified(r, created["secret"]) for r in hooks]
    assert len(payloads) == 6
    sequence = [(p["data"]["reference"], p["type"]) for p in payloads]
    assert [t for ref, t in sequence if ref == first["reference"]] == [
        "booking.created",
        "booking.amended",
        "booking.arrived",
        "booking.departed",
    ]
    assert [t for ref, t in sequence if ref == second["reference"]] == ["booking.created", "booking.cancelled"]
    made = next(p for p in payloads if p["type"] == "booking.created" and p["data"]["reference"] == first["reference"])
    assert made["data"] == first  # the API's booking JSON, as the agent got it from POST /bookings
    change = {k: v for k, v in amended.json().items() if k != "amendment"}  # PATCH also reports the price change
    assert next(p for p in payloads if p["type"] == "booking.amended")["data"] == change
    assert next(p for p in payloads if p["type"] == "booking.departed")["data"]["status"] == "departed"
    assert all(set(p) == {"type", "timestamp", "data"} for p in payloads)
    wait_for(lambda: len(receiver.at("/operator")) == 2, timeout=45, message="the operator's two booking.created")
    assert receiver.at("/other") == []

    def delivered_log():  # the worker records each answer just after the receiver has sent it
        log = agent_api.get(f"/webhooks/{created['id']}/deliveries").json()
        return [d["status"] for d in log] == ["delivered"] * 6 and log

    log = wait_for(delivered_log, timeout=45, message="the delivery log")
    assert all(d["last_status_code"] == 200 and d["last_response"] == "ok" for d in log)


def test_retries_after_500s_and_timeouts_keep_each_bookings_order(agent_api, receiver):
    """The first delivery fails twice (500), the second booking's first times out; each booking's later events
    wait for its earlier ones, and every one arrives once it succeeds."""
    hook = subscribe(agent_api, receiver.url("/flaky"), ["booking.created", "booking.amended", "booking.cancelled"])
    receiver.plan("/flaky", (500, 0), (500, 0), (200, 1.5))  # the third request (another booking's) times out
    first = book(agent_api, "RT-1", "RT11 AAA")
    second = book(agent_api, "RT-2", "RT22 BBB")
    for booking in (first, second):
        ref = booking["reference"]
        assert agent_api.patch(f"/bookings/{ref}", json={"flights": {"outbound": "EZ1"}}).status_code == 200
        assert agent_api.post(f"/bookings/{ref}/cancel").status_code == 200
    got = wait_for(lambda: len(by_id(receiver.at("/flaky"))) == 6 and by_id(receiver.at("/flaky")), timeout=45)
    for booking in (first, second):
        mine = [r for r in got if r.json["data"]["reference"] == booking["reference"]]
        types = [verified(r, hook["secret"])["type"] for r in mine]
        assert types == ["booking.created", "booking.amended", "booking.cancelled"], types
    attempts = list(Attempt.objects.filter(endpoint_id=hook["id"]).values_list("status_code", "error"))
    assert attempts.count((500, "")) == 2
    assert (None, "timed out after 1 s") in attempts
    assert Endpoint.objects.get(pk=hook["id"]).active


def test_rotation_signs_with_both_secrets_and_test_events_and_replays_arrive(agent_api, receiver):
    hook = subscribe(agent_api, receiver.url("/rot"), ["booking.created"])
    rotated = agent_api.post(f"/webhooks/{hook['id']}/rotate")
    assert rotated.status_code == 200 and rotated.json()["secret"] != hook["secret"]
    assert set(rotated.json()) == {"id", "url", "events", "secret"}
    assert agent_api.post(f"/webhooks/{hook['id']}/test").status_code == 202
    booking = book(agent_api, "ROT-1", "RO11 TAA")
    got = wait_for(lambda: len(receiver.at("/rot")) == 2 and receiver.at("/rot"), timeout=45)
    for received in got:  # both the new secret and, during the grace period, the old one verify
        verified(received, rotated.json()["secret"])
        verified(received, hook["secret"])
    assert {r.json["type"] for r in got} == {"webhook.test", "booking.created"}
    delivery = Delivery.objects.get(endpoint_id=hook["id"], event__type="booking.created")
    replay = agent_api.post(f"/webhooks/{hook['id']}/deliveries/{delivery.pk}/replay")
    assert replay.status_code == 202
    again = wait_for(lambda: len(receiver.at("/rot")) == 3 and receiver.at("/rot")[-1], timeout=45)
    assert again.headers["webhook-id"] == got[-1].headers["webhook-id"] or again.json["type"] == "booking.created"
    assert verified(again, rotated.json()["secret"])["data"]["reference"] == booking["reference"]
    assert agent_api.delete(f"/webhooks/{hook['id']}").status_code == 204
    assert agent_api.get("/webhooks").json() == []
    assert agent_api.delete(f"/webhooks/{hook['id']}").status_code == 404


def test_an_endpoint_failing_past_the_retry_period_is_disabled_and_its_agent_emailed(parkgate, agent_api, receiver):
    Agent.objects.filter(code="skypark").update(error_report_address="ops@skypark.example")
    hook = subscribe(agent_api, receiver.url("/down"), ["booking.created"])
    receiver.plan("/down", *[(503, 0)] * 50)
    book(agent_api, "DN-1", "DN11 AAA")
    endpoint = wait_for(
        lambda: Endpoint.objects.filter(pk=hook["id"], active=False).first(), timeout=45, message="disabled"
    )
    assert endpoint.disabled_reason.startswith("failing since")
    assert Delivery.objects.get(endpoint=endpoint).status == "failed"
    assert len(receiver.at("/down", ok_only=False)) >= 4  # retried with growing delays, then given up

    # The email job runs on whichever worker takes it from the shared queue (another module's may be up): any log.
    def mail() -> str:
        return "".join(log.read_text(errors="replace") for log in ARTIFACTS.glob("*.log"))

    wait_for(lambda: receiver.url("/down") in mail() and "webhook endpoint" in mail(), timeout=45, message="the email")
    mail = mail()
    assert "To: ops@skypark.example" in mail and receiver.url("/down") in mail
    assert agent_api.get("/webhooks").json()[0]["active"] is False


def test_private_addresses_are_refused_unless_allowed(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    for url in ("http://127.0.0.1:9/x", "http://10.1.2.3/x", "http://[::1]/x", "http://169.254.169.254/", "ftp://x/"):
        with pytest.raises(services.EndpointInvalid) as refused:
            services.endpoint_create(url=url, events=["booking.created"], agent_id=None)
        assert refused.value.field == "url"
    with pytest.raises(services.EndpointInvalid):
        services.endpoint_create(url="https://example.com/h", events=["booking.nope"], agent_id=None)


def test_status_changes_outside_the_booking_services_write_their_event_in_the_same_transaction(settings, demo_world):
    """The no-show sweep (and the lane's one-statement decisions) change the status in SQL: the trigger writes the
    event with the change, and a change rolled back leaves none."""
    from django.db import transaction

    from apps.access.services import bookings_mark_no_show
    from apps.bookings.models import Booking
    from apps.webhooks.models import Event
    from tests.dashboard.conftest import make_booking

    settings.WEBHOOKS_ALLOW_PRIVATE = True
    services.endpoint_create(url="http://127.0.0.1:9/ops", events=["booking.no_show"], agent_id=None)
    past = timezone.now() - timedelta(days=3)
    gone = make_booking("LHR-T5", "NS11 AAA", arrival=past, departure=past + timedelta(days=1))
    kept = make_booking("LHR-T5", "NS22 BBB", arrival=past, departure=past + timedelta(days=1))
    with pytest.raises(RuntimeError), transaction.atomic():
        Booking.objects.filter(pk=kept.pk).update(status="no_show")
        raise RuntimeError("rolled back")
    assert not Event.objects.filter(booking=kept).exists()
    Booking.objects.filter(pk=kept.pk).update(status="cancelled")  # not subscribed, and not a trigger's status
    assert bookings_mark_no_show() == 1
    assert list(Event.objects.values_list("type", "booking_id")) == [("booking.no_show", gone.pk)]
