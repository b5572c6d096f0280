"""Visits stay right when the same vehicles are read at the same moment on lanes held by two server processes,
and revocation is re-checked on heartbeats even when the channel layer's nudge never arrives."""

import asyncio
import json
import threading
from datetime import timedelta

import psycopg
import pytest
from django.conf import settings
from django.db import connections
from websockets.exceptions import ConnectionClosed

from apps.access.decision import plate_read_decide
from apps.access.models import Device, PlateRead, Visit
from apps.core.plates import lookalike_key
from tests.clients import LaneController
from tests.lanes.conftest import in_thread, iso, make_booking, make_device, now
from tests.support import database_url_for, start_server

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


def test_an_entry_matched_by_a_candidate_waits_for_that_vehicles_lock(world):
    """Decisions about one vehicle are serialised by its look-alike key. A candidate's entry holds the misread
    plate's lock from its first statement: before it opens the visit under the candidate's plate, it takes that
    vehicle's lock too, so an exit or entry of the vehicle deciding meanwhile is not raced."""
    carpark = world["one"]
    make_booking(carpark, "CA11DTE")
    device = make_device("TST1", ["IN"])["device_id"]
    decided = {}

    def entry():
        try:
            decided["frame"] = plate_read_decide(
                device_id=device, read_id="c-1", lane_code="IN", plate="XQ77ZZK", score=0.3, captured_at=now(),
                candidates=[{"plate": "CA11DTE", "score": 0.85}],
            )  # fmt: skip
        finally:
            connections.close_all()

    with psycopg.connect(database_url_for(settings.DATABASES["default"])) as other:  # another decision, held open
        other.execute("SELECT pg_advisory_xact_lock(%s::integer, hashtext(%s))", [carpark.id, lookalike_key("CA11DTE")])
        deciding = threading.Thread(target=entry)
        deciding.start()
        deciding.join(timeout=1.0)
        waited = deciding.is_alive()
        other.rollback()  # the other decision ends: its lock goes
    deciding.join(timeout=10)
    assert waited, "the candidate's entry did not wait for the vehicle's lock"
    assert decided["frame"]["match"] == "candidate" and Visit.objects.get().plate == "CA11DTE"


@pytest.mark.parametrize("read_as", ["misread plate", "candidate"])
def test_an_unpaired_exit_claimed_meanwhile_is_not_paired_twice(world, read_as):
    """An exit filed unpaired under a misread plate (the vehicle's among its candidates) can be claimed by two late
    entries that hold different vehicle locks: one read as the misread plate, one as the candidate. While another
    decision holds the exit, a late entry waits for its row; once that one has taken it, the entry finds it taken
    and its visit stays open."""
    carpark = world["one"]
    make_booking(carpark, "M15EXT")
    device = make_device("TST1", ["IN", "OUT"])["device_id"]
    exit_at = now() - timedelta(minutes=1)
    plate_read_decide(
        device_id=device, read_id="x-1", lane_code="OUT", plate="W15EXT", score=0.95, captured_at=exit_at,
        candidates=[{"plate": "M15 EXT", "score": 0.9}],
    )  # fmt: skip
    unpaired = PlateRead.objects.get(unpaired_exit=True)
    decided = {}

    def late_entry():
        try:
            decided["frame"] = plate_read_decide(
                device_id=device, read_id="e-1", lane_code="IN", score=0.95, captured_at=exit_at - timedelta(hours=2),
                plate="W15EXT" if read_as == "misread plate" else "M15EXT", local_action="open", retransmit=True,
            )  # fmt: skip
        finally:
            connections.close_all()

    with psycopg.connect(database_url_for(settings.DATABASES["default"])) as other:  # another decision takes it
        other.execute("UPDATE access_plateread SET unpaired_exit = false WHERE id = %s", [unpaired.id])
        deciding = threading.Thread(target=late_entry)
        deciding.start()
        deciding.join(timeout=1.0)
        waited = deciding.is_alive()
        other.commit()
    deciding.join(timeout=10)
    assert waited, "the late entry did not wait for the exit's row"
    assert decided["frame"]["reason"] == "stale"
    visit = Visit.objects.get()
    assert (visit.exited_at, visit.exit_read) == (None, None)
    assert not PlateRead.objects.filter(unpaired_exit=True).exists()
