"""Visits stay right when the same vehicles are read at the same moment on lanes held by two server processes,
and revocation is re-checked on heartbeats even when the channel layer's nudge never arrives."""

import asyncio
import json

import pytest
from websockets.exceptions import ConnectionClosed

from apps.access.models import Device, PlateRead, Visit
from tests.clients import LaneController
from tests.lanes.conftest import in_thread, iso, make_booking, make_device, now
from tests.support import start_server

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def second_server(server_env):
    server = start_server(server_env, name="lanes-second", worker=False)
    yield server
    server.stop()


def test_simultaneous_entries_on_two_processes_open_one_visit_per_vehicle(parkgate, second_server, world):
    carpark = world["one"]
    plates = [f"CC{n:02d}RNT" for n in range(25)]
    for plate in plates:
        make_booking(carpark, plate)
    first, second = make_device("TST1", ["IN"]), make_device("TST1", ["IN2"])
    t = iso(now())

    async def burst(server, token, lane, prefix):
        async with LaneController(server, token) as controller:
            await controller.hello()
            for plate in plates:
                await controller.send(
                    {"type": "plate_read", "read_id": f"{prefix}-{plate}", "lane": lane, "plate": plate,
                     "score": 0.95, "captured_at": t}
                )  # fmt: skip
            decisions = {}
            while len(decisions) < len(plates):
                frame = await controller.recv(timeout=30)
                if frame.get("type") == "decision":
                    decisions[frame["read_id"].split("-", 1)[1]] = frame
            return decisions

    async def drive():
        return await asyncio.gather(
            burst(parkgate, first["token"], "IN", "a"), burst(second_server, second["token"], "IN2", "b")
        )

    a, b = asyncio.run(drive())
    for plate in plates:
        pair = sorted([a[plate]["reason"], b[plate]["reason"]])
        assert pair == ["already_inside", "booking"], (plate, pair)
    assert Visit.objects.filter(exited_at__isnull=True).count() == len(plates)
    assert {v.plate for v in Visit.objects.all()} == set(plates)
    assert PlateRead.objects.count() == 2 * len(plates)


def test_a_heartbeat_finds_a_revocation_whose_nudge_was_lost(parkgate, world):
    device = make_device("TST1", ["IN"])

    async def drive():
        async with LaneController(parkgate, device["token"]) as controller:
            await controller.hello()
            # revoked behind the server's back: no event is published
            await in_thread(lambda: Device.objects.filter(pk=device["device_id"]).update(revoked_at=now()))
            await controller.send({"type": "heartbeat", "barriers": {"IN": "closed"}})
            try:
                while True:
                    await controller.recv(timeout=5)
            except ConnectionClosed as closed:
                return closed.rcvd.code

    assert asyncio.run(drive()) == 4401


def test_enrolment_rate_limit_counts_per_address():
    from device_gateway.api import _rate_limited

    bucket = f"test:{json.dumps(iso(now()))}"
    assert [_rate_limited(bucket, 3) for _ in range(3)] == [None, None, None]
    wait = _rate_limited(bucket, 3)
    assert wait is not None and 1 <= wait <= 60
