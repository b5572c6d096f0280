"""Vendor adapters (device-protocol.md 7): the real sample payloads posted over HTTP to a running server."""

import base64
import functools
import json
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from apps.access import cameras
from apps.access.models import Alert, BarrierCommand, Device, PlateRead, UnmappedRead, Visit
from apps.staff.services import staff_member_set
from device_gateway import vendors
from device_gateway.codec import ProtocolError
from tests.dashboard.conftest import PASSWORD, login, post
from tests.lanes.conftest import iso, make_booking, make_device, now
from tests.support import ROOT, wait_for

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
    assert answer.status_code == 202  # camera-1 is not mapped (camera-9 is): kept, not decided
    assert [k["camera"] for k in answer.json()["kept"]] == ["camera-1"]
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


# --- Cameras mapped to lanes; unmapped reads kept (issue #27, item 5) ---------------------------------------------


def enrol_device_command(server_env, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "manage.py"), "enrol_device", *args]
    return subprocess.run(command, env=server_env, cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_enrol_device_maps_vendor_cameras_to_lanes(parkgate, server_env, world):
    booking = make_booking(world["one"], "9JUB11")
    lanes = ["--carpark", "TST1", "--lane", "IN", "--lane", "OUT"]
    done = enrol_device_command(server_env, *lanes, "--camera", "camera-1=IN", "--camera", "1=OUT")
    assert done.returncode == 0, done.stderr
    enrolled = httpx.post(f"{parkgate.http}/api/device/v1/enrol", json={"code": done.stdout.splitlines()[-1]})
    auth = {"Authorization": f"Bearer {enrolled.json()['token']}"}
    pr = httpx.post(f"{parkgate.http}/api/device/v1/platerecognizer", content=platerecognizer_sample(), headers=auth)
    hik = httpx.post(f"{parkgate.http}/api/device/v1/hikvision", content=hikvision_sample("hikvision-anpr-2.xml"),
                     headers=auth)  # fmt: skip
    assert (pr.status_code, hik.status_code) == (200, 200)
    assert (pr.json()["decisions"][0]["reason"], pr.json()["decisions"][0]["booking"]) == ("booking", booking.reference)
    assert hik.json()["decisions"][0]["reason"] == "no_visit"  # an exit: channel 1 is OUT
    assert dict(PlateRead.objects.values_list("plate", "lane__code")) == {"9JUB11": "IN", "KH35192": "OUT"}

    devices = Device.objects.count()
    unknown = enrol_device_command(server_env, *lanes, "--camera", "camera-1=IN2")  # TST1's, not one of --lane
    malformed = [enrol_device_command(server_env, *lanes, "--camera", value) for value in ("camera-1", "=IN")]
    assert unknown.returncode == 1 and "IN2" in unknown.stderr
    assert [m.returncode for m in malformed] == [2, 2]
    assert all("CAMERA_ID=LANE" in m.stderr for m in malformed)
    assert Device.objects.count() == devices  # nothing created by a refused command line


def test_an_unmapped_push_is_kept_and_alerted_then_decided_once_a_supervisor_maps_the_camera(parkgate, world):
    booking = make_booking(world["one"], "9JUB11")
    device = make_device("TST1", ["IN", "OUT"])
    staff_member_set(username="sam", password=PASSWORD, carpark_codes=["TST1"], role="supervisor")
    staff_member_set(username="otto", password=PASSWORD, carpark_codes=["TST1"], role="operator")
    auth = {"Authorization": f"Bearer {device['token']}", "Content-Type": "application/json"}
    url, body = f"{parkgate.http}/api/device/v1/platerecognizer", platerecognizer_sample()

    first, again = httpx.post(url, content=body, headers=auth), httpx.post(url, content=body, headers=auth)
    # 202: accepted and kept, nothing decided (no decision to act on); a 2xx, so the camera does not post it again
    assert (first.status_code, again.status_code) == (202, 202)
    [kept] = first.json()["kept"]
    assert first.json()["decisions"] == [] and again.json() == first.json()
    assert kept["camera"] == "camera-1" and kept["read_id"].startswith("camera-1:")
    assert not PlateRead.objects.exists() and UnmappedRead.objects.count() == 1
    alert = Alert.objects.get()
    assert (alert.reason, alert.plate, alert.lane) == ("unmapped_camera", "9JUB11", None)

    supervisor, operator = login(parkgate, "sam"), login(parkgate, "otto")
    [camera] = supervisor.get("/dashboard/snapshot").json()["carparks"][0]["cameras"]
    assert (camera["camera"], camera["lane"], camera["kept"], camera["lanes"]) == ("camera-1", None, 1, ["IN", "OUT"])
    mapping = f"/dashboard/devices/{device['device_id']}/cameras"
    assert post(operator, mapping, {"camera": "camera-1", "lane": "IN"}).status_code == 404
    assert post(supervisor, mapping, {"camera": "camera-1", "lane": "X-IN"}).status_code == 400  # not its lane
    mapped = post(supervisor, mapping, {"camera": "camera-1", "lane": "IN"})
    assert mapped.status_code == 200, mapped.text

    read = wait_for(lambda: PlateRead.objects.filter(read_id=kept["read_id"]).first(), message="the kept read decided")
    assert (read.lane.code, read.booking_id) == ("IN", booking.id)
    assert Visit.objects.get().booking_id == booking.id
    assert Device.objects.get(pk=device["device_id"]).settings == {"cameras": {"camera-1": "IN"}}
    assert Alert.objects.get().acknowledged_by.username == "sam"
    wait_for(lambda: not UnmappedRead.objects.filter(decided_at__isnull=True).exists(), message="kept reads done")
    [camera] = supervisor.get("/dashboard/snapshot").json()["carparks"][0]["cameras"]
    assert (camera["lane"], camera["kept"]) == ("IN", 0)
    resent = httpx.post(url, content=body, headers=auth)  # now it has a decision: the stored one
    assert resent.status_code == 200 and resent.json()["decisions"][0]["duplicate"] is True


def test_a_cameras_kept_reads_raise_one_alert_and_are_purged_after_the_read_retention(world):
    device = make_device("TST1", ["IN", "OUT"])
    keep = functools.partial(cameras.unmapped_read_keep, device_id=device["device_id"], camera="c9", score=0.9)
    old, new = (
        keep(read_id="r-old", plate="AB12CDE", captured_at=now()),
        keep(read_id="r-new", plate="XY", captured_at=now()),
    )
    assert old.alert_id == new.alert_id and Alert.objects.count() == 1  # one alert per camera waiting, not per car
    UnmappedRead.objects.filter(pk=old.pk).update(received_at=now() - timedelta(days=91))  # retention: 90 days
    assert cameras.unmapped_reads_purge() == 1
    assert list(UnmappedRead.objects.values_list("read_id", flat=True)) == ["r-new"]
