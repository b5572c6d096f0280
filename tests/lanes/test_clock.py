"""A device whose clock is wrong (device-protocol.md 3, rule 2): a stale read that is not from a controller's offline
buffer (neither `retransmit` nor `local_action`) is decided at the server's receipt time, staff are alerted once per
device, and the dashboard shows each device's clock offset, measured from heartbeats and pushes. Over a real
WebSocket, real vendor pushes and the real dashboard snapshot."""

import asyncio
import re
from datetime import timedelta

import httpx
import pytest

from apps.access.models import Alert, Device, PlateRead, Visit
from apps.staff.services import staff_member_set
from tests.clients import LaneController
from tests.dashboard.conftest import PASSWORD, login
from tests.lanes.conftest import in_thread, iso, make_booking, make_device, now
from tests.lanes.test_vendors import fresh, hikvision_sample
from tests.support import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def lanes_of(parkgate, username: str) -> list[dict]:
    staff_member_set(username=username, password=PASSWORD, carpark_codes=["TST1"], role="operator")
    client = login(parkgate, username)
    try:
        snapshot = client.get("/dashboard/snapshot").json()
    finally:
        client.close()
    return next(c for c in snapshot["carparks"] if c["code"] == "TST1")["lanes"]


def test_a_controller_with_a_slow_clock_gets_its_booked_car_in_and_staff_are_alerted_once(parkgate, world):
    booking = make_booking(world["one"], "CL0CK1")
    make_booking(world["one"], "CL0CK2")
    device = make_device("TST1", ["IN", "OUT"])

    async def drive():
        async with LaneController(parkgate, device["token"]) as lane:
            await lane.hello()
            first = await lane.read("IN", "CL0CK1", captured_at=iso(now() - timedelta(seconds=40)))
            second = await lane.read("IN", "CL0CK2", captured_at=iso(now() - timedelta(seconds=41)))
            buffered = await lane.read("IN", "BUFF3R", captured_at=iso(now() - timedelta(seconds=40)), retransmit=True)
            return first, second, buffered

    started = now()
    first, second, buffered = asyncio.run(drive())
    assert (first["action"], first["reason"], first["booking"]) == ("open", "booking", booking.reference)
    assert first["command_id"] is not None
    assert (second["action"], second["reason"]) == ("open", "booking")
    assert (buffered["action"], buffered["reason"]) == ("none", "stale")  # the rule stays for buffered reads
    visit = Visit.objects.get(plate="CL0CK1")
    assert visit.entered_at >= started  # at the server's receipt time, not the device's
    read = PlateRead.objects.get(plate="CL0CK1")
    assert read.captured_at >= started and -42 <= read.clock_offset_s <= -39
    [alert] = Alert.objects.filter(reason="clock")  # once per device
    assert re.fullmatch(r"camera clock is 4\d s off \(behind\): dev-IN", alert.detail)
    assert -42 <= Device.objects.get(pk=device["device_id"]).clock_offset_s <= -39
    lane = next(lane for lane in lanes_of(parkgate, "clock-ws") if lane["code"] == "IN")
    assert -42 <= lane["clock_offset_s"] <= -39


def test_heartbeats_measure_the_clock_offset_shown_on_the_dashboard(parkgate, world):
    device = make_device("TST1", ["IN"])

    async def drive():
        async with LaneController(parkgate, device["token"]) as lane:
            await lane.hello()
            await lane.send(
                {"type": "heartbeat", "barriers": {"IN": "closed"}, "sent_at": iso(now() + timedelta(seconds=45))}
            )
            await lane.send(
                {"type": "heartbeat", "barriers": {"IN": "closed"}, "sent_at": iso(now() + timedelta(seconds=46))}
            )
            await lane.send({"type": "nonsense"})  # frames are handled in order: once answered, the heartbeats are
            return await lane.recv()

    asyncio.run(drive())
    assert 44 <= Device.objects.get(pk=device["device_id"]).clock_offset_s <= 47
    [alert] = Alert.objects.filter(reason="clock")
    assert re.fullmatch(r"camera clock is 4\d s off \(ahead\): dev-IN", alert.detail)
    [lane] = [lane for lane in lanes_of(parkgate, "clock-hb") if lane["code"] == "IN"]
    assert 44 <= lane["clock_offset_s"] <= 47


def test_a_camera_pushing_with_a_slow_clock_is_decided_at_receipt_and_alerted_once(parkgate, world):
    booking = make_booking(world["one"], "PECT600")
    device = make_device("TST1", ["IN", "OUT"], settings={"channels": {"1": "IN"}})
    url = f"{parkgate.http}/api/device/v1/hikvision"
    auth = {"Authorization": f"Bearer {device['token']}"}
    answers = []
    for n, sample in enumerate(("hikvision-anpr-1.xml", "hikvision-anpr-2.xml")):
        xml = hikvision_sample(sample).decode()
        xml = fresh(xml, r"<dateTime>[^<]+", f"<dateTime>{iso(now() - timedelta(seconds=40 + n))}")
        answers.append(httpx.post(url, content=xml, headers=auth).json()["decisions"][0])
    assert (answers[0]["action"], answers[0]["reason"], answers[0]["booking"]) == ("open", "booking", booking.reference)
    assert answers[1]["reason"] == "unknown_vehicle"
    [alert] = Alert.objects.filter(reason="clock")
    assert re.fullmatch(r"camera clock is 4\d s off \(behind\): dev-IN", alert.detail)
    assert -42 <= Device.objects.get(pk=device["device_id"]).clock_offset_s <= -39


def test_a_controller_with_a_fast_clock_has_its_reads_decided_at_receipt(parkgate, world):
    """Ahead by more than stale_after_s (but inside the 10 minutes a time may be ahead): the same as behind."""
    booking = make_booking(
        world["one"], "FA5T1", arrival=now() + timedelta(minutes=3), departure=now() + timedelta(hours=3)
    )
    device = make_device("TST1", ["IN"])

    async def drive():
        async with LaneController(parkgate, device["token"]) as lane:
            await lane.hello()
            return await lane.read("IN", "FA5T1", captured_at=iso(now() + timedelta(minutes=5)))

    started = now()
    decision = asyncio.run(drive())
    assert (decision["action"], decision["reason"], decision["booking"]) == ("open", "booking", booking.reference)
    visit = Visit.objects.get(plate="FA5T1")
    assert started <= visit.entered_at <= now()
    assert 298 <= PlateRead.objects.get(plate="FA5T1").clock_offset_s <= 301
    [alert] = Alert.objects.filter(reason="clock")
    assert re.fullmatch(r"camera clock is 3\d\d s off \(ahead\): dev-IN", alert.detail)


def test_live_reads_measure_the_clock_and_a_clock_put_right_then_wrong_again_alerts_again(parkgate, world):
    device = make_device("TST1", ["IN"])

    def offset():
        return Device.objects.get(pk=device["device_id"]).clock_offset_s

    async def drive():
        async with LaneController(parkgate, device["token"]) as lane:
            await lane.hello()
            await lane.read("IN", "WR0NG1", captured_at=iso(now() - timedelta(seconds=40)))
            await lane.read("IN", "R1GHT1")  # a live read, no sent_at: its capture time measures the clock
            await in_thread(wait_for, lambda: abs(offset()) < 1, message="the clock measured right again")
            await lane.read("IN", "WR0NG2", captured_at=iso(now() - timedelta(seconds=50)))

    asyncio.run(drive())
    details = sorted(Alert.objects.filter(reason="clock").values_list("detail", flat=True))
    assert [re.fullmatch(r"camera clock is (\d\d) s off \(behind\): dev-IN", d).group(1)[0] for d in details] == [
        "4",
        "5",
    ]
