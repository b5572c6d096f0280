"""What a lane controller or camera may not send (device-protocol.md 2, errors): times outside the sane window and
characters no database column can hold are `bad_message`, final for the read, never `retry` (which a controller
resends forever and which does not count towards 4008). Over a real WebSocket and real HTTP pushes."""

import asyncio
import json
from datetime import timedelta

import httpx
import pytest

from apps.access.models import PlateRead
from tests.clients import LaneController
from tests.lanes.conftest import iso, make_device, now
from tests.lanes.test_gateway import closed_code, plate_read
from tests.lanes.test_vendors import fresh, hikvision_sample, platerecognizer_sample

pytestmark = pytest.mark.django_db(transaction=True)

BAD_TIMES = [
    "9999-12-31T23:00:00-05:00",  # year 10000 in UTC
    "0001-01-01T00:00:00+05:00",  # before year 1 in UTC
    "1999-12-31T23:59:59Z",  # before 2000
]

BAD_FIELDS = [
    {"plate": "AB12\x00CDE"},
    {"plate": "AB12\ud800CDE"},  # a lone surrogate: not encodable in UTF-8
    {"region": "g\x00b"},
    {"region": "\udfff"},
    {"vehicle": {"type": "car\x00"}},
    {"vehicle": {"make\ud800": "ford"}},
    {"candidates": [{"plate": "AB12\x00CDF", "score": 0.4}]},
    {"candidates": [{"plate": "\ud83dCDF", "score": 0.4}]},
]


def test_reads_with_times_outside_the_window_or_bad_characters_are_bad_message(parkgate, world):
    device = make_device("TST1", ["IN"])
    frames = [plate_read(f"time-{n}", "IN", "AB12CDE", now()) | {"captured_at": t} for n, t in enumerate(BAD_TIMES)]
    frames.append(plate_read("future", "IN", "AB12CDE", now() + timedelta(minutes=11)))
    frames += [plate_read(f"char-{n}", "IN", "AB12CDE", now()) | f for n, f in enumerate(BAD_FIELDS)]
    log_from = len(parkgate.serve.log())
    bad_read_ids = [{**plate_read(rid, "IN", "AB12CDE", now()), "read_id": rid} for rid in ("r\x00", "r\ud800")]

    async def drive():
        async with LaneController(parkgate, device["token"]) as lane:
            await lane.hello()
            answers = []
            for frame in frames + bad_read_ids:
                await lane.send(frame)
                answers.append(await lane.recv())
            ahead = await lane.read("IN", "AB12CDE", captured_at=iso(now() + timedelta(minutes=5)))
            for _ in range(21 - len(answers)):  # the 21st error in a minute closes: they all count
                await lane.send(frames[0])
                await lane.recv()
            return answers, ahead, await closed_code(lane)

    answers, ahead, code = asyncio.run(drive())
    assert [(a["type"], a["code"], a.get("read_id")) for a in answers] == [
        ("error", "bad_message", frame["read_id"]) for frame in frames
    ] + [("error", "bad_message", None)] * len(bad_read_ids)
    assert ahead["type"] == "decision"  # 5 min ahead is within the window
    assert code == 4008
    assert PlateRead.objects.count() == 1
    assert "Traceback" not in parkgate.serve.log()[log_from:]


def vendor_post(parkgate, device, path: str, content: bytes | str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {device['token']}"}
    return httpx.post(f"{parkgate.http}/api/device/v1/{path}", content=content, headers=headers)


def test_vendor_pushes_with_times_outside_the_window_or_bad_characters_are_bad_message(parkgate, world):
    device = make_device("TST1", ["IN"])
    good = json.loads(platerecognizer_sample())
    bodies = []
    for when in BAD_TIMES:
        body = json.loads(json.dumps(good))
        body["data"]["timestamp"] = when
        bodies.append(json.dumps(body))
    for plate in ("9JUB\x0011", "9JUB\ud80011"):
        body = json.loads(json.dumps(good))
        body["data"]["results"][0]["plate"] = plate
        bodies.append(json.dumps(body))
    body = json.loads(json.dumps(good))
    body["hook"]["id"] = "cam\x00"  # becomes part of the read_id
    bodies.append(json.dumps(body))
    answers = [vendor_post(parkgate, device, "platerecognizer", body) for body in bodies]
    xml = hikvision_sample().decode()
    hik = [
        vendor_post(parkgate, device, "hikvision", fresh(xml, r"<dateTime>[^<]+", f"<dateTime>{t}")) for t in BAD_TIMES
    ]
    assert [(a.status_code, a.json()["error"]) for a in answers + hik] == [(400, "bad_message")] * (len(bodies) + 3)
    assert vendor_post(parkgate, device, "platerecognizer", platerecognizer_sample()).status_code == 200
    assert PlateRead.objects.count() == 1
