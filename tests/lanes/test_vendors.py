"""Vendor adapters (device-protocol.md 7): the real sample payloads posted over HTTP to a running server."""

import base64
import json
import re
from pathlib import Path

import httpx
import pytest

from apps.access.models import BarrierCommand, PlateRead
from device_gateway import vendors
from device_gateway.codec import ProtocolError
from tests.lanes.conftest import iso, make_booking, make_device, now

pytestmark = pytest.mark.django_db(transaction=True)

SAMPLES = Path(__file__).resolve().parent.parent / "fixtures" / "vendor"


def fresh(text: str, pattern: str, replacement: str) -> str:
    """The sample with its capture time moved to now (a 2021 read would be stale and decided `none`)."""
    return re.sub(pattern, replacement, text, count=1)


def platerecognizer_sample(name: str = "platerecognizer-stream-webhook-1.json") -> str:
    text = (SAMPLES / name).read_text()
    return fresh(text, r'"timestamp": "[^"]+"', f'"timestamp": "{iso(now())}"')


def hikvision_sample(name: str = "hikvision-anpr-1.xml") -> bytes:
    text = (SAMPLES / name).read_text()
    return fresh(text, r"<dateTime>[^<]+</dateTime>", f"<dateTime>{iso(now())}</dateTime>").encode()


def test_platerecognizer_json_and_multipart_are_decided_once(parkgate, world):
    booking = make_booking(world["one"], "9JUB11")
    device = make_device("TST1", ["IN", "OUT"], settings={"cameras": {"camera-1": "IN"}})
    body = platerecognizer_sample()
    auth = {"Authorization": f"Bearer {device['token']}"}
    url = f"{parkgate.http}/api/device/v1/platerecognizer"
    first = httpx.post(url, content=body, headers=auth | {"Content-Type": "application/json"})
    again = httpx.post(
        url, data={"json": body}, files={"upload": ("frame.jpg", b"\xff\xd8jpeg", "image/jpeg")}, headers=auth
    )
    assert first.status_code == 200 and again.status_code == 200
    [decision] = first.json()["decisions"]
    assert (decision["action"], decision["reason"], decision["match"], decision["booking"]) == (
        "open", "booking", "exact", booking.reference,
    )  # fmt: skip
    assert decision["command_id"] is None and decision["expires_at"] is None  # no barrier commands for cameras
    assert again.json()["decisions"] == [decision | {"duplicate": True}]
    read = PlateRead.objects.get()
    assert (read.plate_raw, read.plate, read.score, read.region) == ("9jub11", "9JUB11", 0.839, "gb")
    assert read.vehicle == {"type": "Big Truck"} and not BarrierCommand.objects.exists()


def test_platerecognizer_mmc_sample_with_basic_auth_and_unmapped_camera(parkgate, world):
    device = make_device("TST1", ["IN", "OUT"], settings={"cameras": {"camera-9": "IN"}})
    basic = "Basic " + base64.b64encode(f"camera:{device['token']}".encode()).decode()
    body = platerecognizer_sample("platerecognizer-stream-webhook-2-mmc.json")
    url = f"{parkgate.http}/api/device/v1/platerecognizer"
    answer = httpx.post(url, content=body, headers={"Authorization": basic, "Content-Type": "application/json"})
    assert answer.status_code == 200
    assert [d["code"] for d in answer.json()["decisions"]] == ["unknown_lane"]
    mapped = make_device("TST1", ["IN"])  # one lane: no mapping needed
    basic = "Basic " + base64.b64encode(f"any:{mapped['token']}".encode()).decode()
    answer = httpx.post(url, content=body, headers={"Authorization": basic, "Content-Type": "application/json"})
    [decision] = answer.json()["decisions"]
    assert (decision["action"], decision["reason"]) == ("deny", "unknown_vehicle")
    assert PlateRead.objects.get().vehicle == {
        "type": "SUV",
        "make": "Mercedes-Benz",
        "model": "Citan",
        "color": "white",
    }


def test_hikvision_xml_and_multipart(parkgate, world):
    booking = make_booking(world["one"], "PECT600")
    device = make_device("TST1", ["IN", "OUT"], settings={"channels": {"1": "IN"}})
    auth = {"Authorization": f"Bearer {device['token']}"}
    url = f"{parkgate.http}/api/device/v1/hikvision"
    xml = hikvision_sample()
    first = httpx.post(url, content=xml, headers=auth | {"Content-Type": "application/xml"})
    [decision] = first.json()["decisions"]
    assert (decision["action"], decision["reason"], decision["booking"]) == ("open", "booking", booking.reference)
    assert decision["read_id"] == "2024011911172144900FlERIduqg06eKsYuvLX072NugIxaHw22mHG5D5KBmWqX"
    again = httpx.post(
        url,
        files={
            "anpr.xml": ("anpr.xml", xml, "application/xml"),
            "licensePlatePicture.jpg": ("p.jpg", b"\xff", "image/jpeg"),
        },
        headers=auth,
    )
    assert again.json()["decisions"] == [decision | {"duplicate": True}]
    other = httpx.post(url, content=hikvision_sample("hikvision-anpr-2.xml"), headers=auth)
    unknown = httpx.post(url, content=hikvision_sample("hikvision-anpr-3-plate-unknown.xml"), headers=auth)
    assert other.json()["decisions"][0]["reason"] == "unknown_vehicle"
    assert unknown.json()["decisions"][0]["reason"] == "low_confidence"  # confidenceLevel 0
    read = PlateRead.objects.get(plate="PECT600")
    assert (read.score, read.retransmit, read.vehicle["color"]) == (0.97, False, "white")


def test_vendor_endpoints_refuse_bad_tokens_and_bad_bodies(parkgate, world):
    device = make_device("TST1", ["IN"])
    url = f"{parkgate.http}/api/device/v1/hikvision"
    assert httpx.post(url, content=hikvision_sample(), headers={"Authorization": "Bearer nope"}).status_code == 401
    assert httpx.post(url, content=hikvision_sample()).status_code == 401
    auth = {"Authorization": f"Bearer {device['token']}"}
    bomb = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "bbbb">]><EventNotificationAlert>&b;</EventNotificationAlert>'
    assert httpx.post(url, content=bomb, headers=auth).status_code == 400
    assert httpx.post(url, content=b"<nope", headers=auth).status_code == 400
    pr = f"{parkgate.http}/api/device/v1/platerecognizer"
    assert httpx.post(pr, content=b"{}", headers=auth).status_code == 400
    assert not PlateRead.objects.exists()


def test_parsers_map_the_samples_faithfully():
    [pr] = vendors.platerecognizer_reads(json.loads((SAMPLES / "platerecognizer-stream-webhook-1.json").read_text()))
    assert (pr.source, pr.read.plate, pr.read.score, pr.read.region) == ("camera-1", "9jub11", 0.839, "gb")
    assert pr.read.read_id == "camera-1:2021-09-29T05:56:13.606935Z:0"
    assert [c["plate"] for c in pr.read.candidates] == ["9jub11", "sju88y", "sjubi"]
    assert all(c["score"] is None for c in pr.read.candidates)  # no score: never usable
    [hik] = vendors.hikvision_reads((SAMPLES / "hikvision-anpr-2.xml").read_bytes())
    assert (hik.source, hik.read.plate, hik.read.score, hik.read.retransmit) == ("1", "KH35192", 1.0, False)
    assert hik.read.captured_at.isoformat() == "2023-08-11T13:49:00+01:00"
    heartbeat = b"<EventNotificationAlert><eventType>videoloss</eventType></EventNotificationAlert>"
    assert vendors.hikvision_reads(heartbeat) == []
    with pytest.raises(ProtocolError):
        vendors.platerecognizer_reads(b"not json")
