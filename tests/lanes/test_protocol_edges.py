"""The edges of the lane controller contract, end to end against a real `serve`: what a controller built from
device-protocol.md alone may send, and must get back (1.2 enrolment errors, 2 hello, 5 lists after every welcome)."""

import asyncio
import json

import httpx
import pytest

from apps.access import services
from apps.access.models import Device
from tests.clients import LaneController
from tests.lanes.conftest import in_thread, make_device, now
from tests.lanes.test_gateway import closed_code, plate_read

pytestmark = pytest.mark.django_db(transaction=True)

BAD_HELLOS = [
    {"type": "hello"},  # protocol missing
    {"type": "hello", "protocol": None},
    {"type": "hello", "protocol": "1"},
    {"type": "hello", "protocol": True},  # a JSON boolean, not protocol 1
    {"type": "hello", "protocol": 1.0},
    {"type": "hello", "protocol": [1]},
    {"type": "hello", "protocol": 1, "firmware": 142},
    {"type": "hello", "protocol": 1, "buffered": "3"},
    {"type": "hello", "protocol": 1, "buffered": -1},
]


def test_a_hello_with_a_missing_or_ill_typed_field_is_a_bad_message_and_the_connection_stays(parkgate, world):
    device = make_device("TST1", ["IN"])

    async def drive():
        async with LaneController(parkgate, device["token"]) as lane:
            errors = []
            for frame in BAD_HELLOS:
                await lane.send(frame)
                errors.append(await lane.recv())
            await lane.send(plate_read("r-1", "IN", "AB12CDE", now()))
            not_greeted = await lane.recv()  # none of them greeted the connection
            online = await in_thread(lambda: Device.objects.get(pk=device["device_id"]).online)
            welcome = await lane.hello()  # then a good one works, lists and all
            decision = await lane.read("IN", "AB12CDE")
            return errors, not_greeted, online, welcome, decision

    errors, not_greeted, online, welcome, decision = asyncio.run(drive())
    assert [(e["type"], e["code"]) for e in errors] == [("error", "bad_message")] * len(BAD_HELLOS)
    assert (not_greeted["code"], not_greeted["read_id"]) == ("hello_first", "r-1")
    assert online is False
    assert welcome["device_id"] == device["device_id"]
    assert decision["type"] == "decision" and decision["reason"] == "unknown_vehicle"


def test_bad_hellos_count_towards_the_4008_limit(parkgate, world):
    device = make_device("TST1", ["IN"])

    async def drive():
        async with LaneController(parkgate, device["token"]) as lane:
            for _ in range(21):
                await lane.send({"type": "hello", "protocol": "1"})
            return await closed_code(lane)

    assert asyncio.run(drive()) == 4008


@pytest.mark.parametrize("protocol", [0, 2])
def test_only_an_integer_protocol_other_than_1_is_unsupported_and_closes_with_4002(parkgate, world, protocol):
    device = make_device("TST1", ["IN"])

    async def drive():
        async with LaneController(parkgate, device["token"]) as lane:
            await lane.send({"type": "hello", "protocol": protocol, "firmware": "9.0"})
            error = await lane.recv()
            return error, await closed_code(lane)

    error, code = asyncio.run(drive())
    assert (error["type"], error["code"], code) == ("error", "unsupported_protocol", 4002)


def test_every_welcome_answering_a_hello_is_followed_by_the_allowlist_and_blocklist(parkgate, world):
    device = make_device("TST1", ["IN"])

    async def drive():
        async with LaneController(parkgate, device["token"]) as lane:
            await lane.hello()
            first = lane.allowlist
            again = await lane.hello()  # a second hello on the same connection, same list version
            return first, again, lane.allowlist, lane.blocklist, await lane.read("IN", "AB12CDE")

    first, again, allowlist, blocklist, decision = asyncio.run(drive())
    assert again["type"] == "welcome"
    assert allowlist == first and blocklist == {"type": "blocklist", "plates": []}
    assert decision["type"] == "decision"


# --- Enrolment (device-protocol.md 1.2) --------------------------------------------------------------------------


def enrol_post(parkgate, content: bytes, client: httpx.Client | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    return (client or httpx).post(f"{parkgate.http}/api/device/v1/enrol", content=content, headers=headers)


def test_enrolment_without_a_usable_code_is_400_invalid_code_never_422(parkgate, world):
    device, issued = services.device_create(carpark_code="TST1", lane_codes=["IN"], name="enrol-edges")
    code = issued.code
    answers = {
        body: enrol_post(parkgate, body.encode())
        for body in (
            "{}",
            '{"serial": "S-1", "model": "M"}',
            '{"code": null}',
            '{"code": ""}',
            '{"code": 12345}',
            '{"code": true}',
            '{"code": ["' + code + '"]}',
            '{"code": {"value": "' + code + '"}}',
        )
    }
    malformed = {body: enrol_post(parkgate, body.encode()) for body in ("{not json", "[1, 2]", '"code"', "")}
    ill_typed_serial = enrol_post(parkgate, json.dumps({"code": code, "serial": 7}).encode())
    ok = enrol_post(parkgate, json.dumps({"code": code, "serial": "S-1"}).encode())
    again = enrol_post(parkgate, json.dumps({"code": code}).encode())

    for body, response in answers.items():
        assert (response.status_code, response.json()) == (400, {"error": "invalid_code"}), body
    for body, response in malformed.items():
        assert response.status_code == 400, body
        assert response.json()["error"] == "bad_message" and response.json()["detail"], body
    assert (ill_typed_serial.status_code, ill_typed_serial.json()["error"]) == (400, "bad_message")
    assert ok.status_code == 201, ok.text  # the ill-typed serial did not use the code up
    assert ok.json()["device_id"] == str(device.id) and ok.json()["lanes"] == ["IN"]
    assert (again.status_code, again.json()) == (400, {"error": "invalid_code"})
    assert Device.objects.get(pk=device.id).serial == "S-1"


def test_enrolment_rate_limit_counts_malformed_requests_too(parkgate):
    # A client address of its own (any 127/8 address is loopback), so that no other test shares its minute's bucket.
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.77")) as client:
        answers = []
        for n in range(121):  # over the limit of 60 a minute, even if a minute boundary falls in between
            answers.append(enrol_post(parkgate, b"{not json" if n % 2 else b"{}", client))
            if answers[-1].status_code == 429:
                break
    limited = answers.pop()
    assert limited.status_code == 429, [a.status_code for a in answers[-3:]]
    assert limited.json() == {"error": "rate_limited"} and 1 <= int(limited.headers["Retry-After"]) <= 60
    assert {a.status_code for a in answers} == {400}
    assert {a.json()["error"] for a in answers} == {"bad_message", "invalid_code"}
