"""Gateway input that must neither crash nor cost: hostile nesting on both protocols (issue #28, item 7)."""

import asyncio
import json

import httpx
import pytest

from apps.access.models import PlateRead
from tests.clients import LaneController
from tests.lanes.conftest import make_device, now
from tests.lanes.test_gateway import plate_read

pytestmark = pytest.mark.django_db(transaction=True)

DEEP = 50_000


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_a_deeply_nested_json_body_on_the_vendor_push_endpoint_is_400_bad_message(parkgate, world):
    device = make_device("TST1", ["IN"])
    auth = {"Authorization": f"Bearer {device['token']}"}
    url = f"{parkgate.http}/api/device/v1/platerecognizer"
    deep_body = '{"hook": {"id": "c"}, "data": {"results": ' + nested(DEEP) + "}}"
    answers = [
        httpx.post(url, content=deep_body, headers=auth | {"Content-Type": "application/json"}),
        httpx.post(url, data={"json": deep_body}, files={"upload": ("f.jpg", b"\xff", "image/jpeg")}, headers=auth),
        httpx.post(f"{parkgate.http}/api/device/v1/enrol", content=nested(DEEP)),
    ]
    assert [(a.status_code, a.json()["error"]) for a in answers] == [(400, "bad_message")] * 3
    assert not PlateRead.objects.exists()


def test_a_deeply_nested_websocket_frame_is_an_error_bad_message_and_the_connection_stays(parkgate, world):
    device = make_device("TST1", ["IN"])
    too_deep = plate_read("deep-1", "IN", "AB12CDE", now()) | {"vehicle": {"type": "car"}}
    frames = [
        nested(30_000),  # under the 64 KiB frame limit
        json.dumps(too_deep).replace('"car"', nested(20_000)),
    ]

    async def drive():
        async with LaneController(parkgate, device["token"]) as lane:
            await lane.hello()
            errors = []
            for frame in frames:
                await lane.ws.send(frame)
                errors.append(await lane.recv())
            return errors, await lane.read("IN", "STILL0K")

    errors, ok = asyncio.run(drive())
    assert [(e["type"], e["code"]) for e in errors] == [("error", "bad_message")] * len(frames)
    assert ok["type"] == "decision"
