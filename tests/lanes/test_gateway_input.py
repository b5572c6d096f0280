"""Gateway input that must neither crash nor cost: hostile nesting on both protocols (issue #28, item 7), and floods
of heartbeats with changing barrier states (item 10)."""

import asyncio
import json

import httpx
import pytest
from django.db import connection

from apps.access.models import Device, PlateRead
from tests.clients import LaneController
from tests.lanes.conftest import in_thread, make_device, now
from tests.lanes.test_gateway import plate_read
from tests.support import wait_for

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


@pytest.fixture
def device_row_writes(world):
    """A database-level count of UPDATEs of access_device rows (a trigger), seen by every server connection."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE test_device_writes (n bigint NOT NULL)")
        cursor.execute("INSERT INTO test_device_writes VALUES (0)")
        cursor.execute(
            "CREATE FUNCTION test_count_device_write() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN UPDATE test_device_writes SET n = n + 1; RETURN NEW; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER test_device_writes AFTER UPDATE ON access_device "
            "FOR EACH ROW EXECUTE FUNCTION test_count_device_write()"
        )

    def count() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT n FROM test_device_writes")
            return cursor.fetchone()[0]

    yield count
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER test_device_writes ON access_device")
        cursor.execute("DROP FUNCTION test_count_device_write()")
        cursor.execute("DROP TABLE test_device_writes")


def test_5000_heartbeats_with_changing_barriers_write_the_device_row_a_few_times_and_the_last_state(
    parkgate, device_row_writes
):
    device = make_device("TST1", ["IN", "OUT"])
    states = [{"IN": ("open", "closed", "fault")[i % 3], "OUT": ("closed", "open")[i % 2]} for i in range(5000)]
    final = {"IN": "fault", "OUT": "open"}
    states[-1] = final

    async def drive():
        async with LaneController(parkgate, device["token"]) as lane:
            await lane.hello()
            before = await in_thread(device_row_writes)
            for state in states:
                await lane.send({"type": "heartbeat", "barriers": state})
            await lane.send(plate_read("after-heartbeats", "IN", "AB12CDE", now()))
            decision = await lane.recv(timeout=120)  # every heartbeat before it has been handled
            await in_thread(
                wait_for, lambda: Device.objects.get(pk=device["device_id"]).barriers == final, message="last state"
            )
            return before, decision

    before, decision = asyncio.run(drive())
    assert decision["type"] == "decision"
    assert device_row_writes() - before <= 10  # coalesced: not one write per heartbeat
    device_row = Device.objects.get(pk=device["device_id"])
    assert device_row.barriers == final
