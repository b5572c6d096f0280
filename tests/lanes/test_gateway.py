"""The lane controller protocol end to end: real `websockets` controllers against a real `serve` (+ worker) on
PostgreSQL and Redis (device-protocol.md 2-5)."""

import asyncio
import json
import random
from datetime import timedelta

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from apps.access import services
from apps.access.models import Alert, BarrierCommand, Device, PlateRead, Visit
from apps.bookings.models import Booking
from apps.carparks.models import Lane
from tests.clients import LaneController
from tests.lanes.conftest import in_thread, iso, make_booking, make_device, now
from tests.support import ROOT, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


async def closed_code(lane: LaneController, timeout: float = 5) -> int:
    """Wait for the server to close the connection; its close code."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(lane.ws.recv(), timeout)
    return closed.value.rcvd.code if closed.value.rcvd else None


def plate_read(read_id: str, lane: str, plate: str, captured_at, **extra) -> dict:
    return {
        "type": "plate_read", "read_id": read_id, "lane": lane, "plate": plate, "score": 0.93,
        "captured_at": iso(captured_at), **extra,
    }  # fmt: skip


def test_entry_then_exit_opens_with_commands_visits_and_occupancy(parkgate, world):
    booking = make_booking(world["one"], "AB12 CDE")
    device = make_device("TST1", ["IN", "OUT"])

    async def drive():
        async with LaneController(parkgate, device["token"], name="e1") as lane:
            welcome = await lane.hello()
            assert [entry["plate"] for entry in lane.allowlist["entries"]] == ["AB12CDE"]
            assert lane.allowlist["entries"][0]["kind"] == "booking" and lane.blocklist["plates"] == []
            entry = await lane.read("IN", "ab-12 cde")
            repeat = await lane.read("IN", "AB12CDE")
            exit_ = await lane.read("OUT", "AB12CDE")
            await lane.send({"type": "command_result", "command_id": entry["command_id"], "status": "done"})
            await lane.send({"type": "heartbeat", "barriers": {"IN": "closed", "OUT": "open"}})
            return welcome, entry, repeat, exit_

    welcome, entry, repeat, exit_ = asyncio.run(drive())
    assert welcome["lanes"] == [{"code": "IN", "direction": "entry"}, {"code": "OUT", "direction": "exit"}]
    assert (entry["action"], entry["reason"], entry["match"], entry["booking"]) == (
        "open",
        "booking",
        "exact",
        booking.reference,
    )
    assert entry["command_id"] and entry["expires_at"] and entry["duplicate"] is False
    assert (repeat["action"], repeat["reason"], repeat["booking"]) == ("open", "repeat", booking.reference)
    assert repeat["command_id"] != entry["command_id"]
    assert (exit_["action"], exit_["reason"], exit_["booking"]) == ("open", "departure", booking.reference)
    visit = Visit.objects.get()
    assert visit.exited_at is not None and visit.booking == booking
    booking.refresh_from_db()
    assert booking.status == "departed"
    assert BarrierCommand.objects.count() == 3
    wait_for(lambda: BarrierCommand.objects.get(command_id=entry["command_id"]).status == "done", message="result")
    wait_for(lambda: Device.objects.get(pk=device["device_id"]).barriers == {"IN": "closed", "OUT": "open"})
    assert PlateRead.objects.filter(plate_raw="ab-12 cde", plate="AB12CDE", booking=booking).count() == 1


def test_resent_reads_after_a_reconnect_are_duplicates_and_create_nothing_twice(parkgate, world):
    make_booking(world["one"], "DU12PLE")
    device = make_device("TST1", ["IN", "OUT"])
    t = now()

    async def drive():
        async with LaneController(parkgate, device["token"]) as lane:
            await lane.hello()
            await lane.send(plate_read("dup-1", "IN", "DU12PLE", t))
            await lane.send(plate_read("dup-2", "IN", "NOBODY1", t))
            first = [await lane.recv(), await lane.recv()]
            await lane.send(plate_read("dup-3", "OUT", "ZZ99ZZZ", t))
            # the connection drops before the controller reads dup-3's decision
        async with LaneController(parkgate, device["token"]) as lane:
            await lane.hello()
            again = {}
            for read_id, lane_code, plate in (
                ("dup-1", "IN", "DU12PLE"),
                ("dup-2", "IN", "NOBODY1"),
                ("dup-3", "OUT", "ZZ99ZZZ"),
            ):
                again[read_id] = await lane.read(lane_code, plate, read_id=read_id, captured_at=iso(t))
        return {d["read_id"]: d for d in first}, again

    first, again = asyncio.run(drive())
    for read_id in ("dup-1", "dup-2"):
        assert again[read_id] == first[read_id] | {"duplicate": True}
    assert first["dup-1"]["action"] == "open" and first["dup-2"]["reason"] == "unknown_vehicle"
    assert again["dup-3"]["reason"] == "no_visit"  # decided once, whether or not the first send got through
    assert PlateRead.objects.count() == 3
    assert Visit.objects.count() == 1
    assert BarrierCommand.objects.count() == 2  # dup-1 and dup-3 opened, once each
    assert Alert.objects.count() == 2  # unknown_vehicle and no_visit


def test_500_buffered_out_of_order_reads_build_the_right_visits_and_open_nothing(parkgate, world):
    """A controller that was offline for hours uploads its buffer: retransmitted, shuffled, all stale."""
    device = make_device("TST1", ["IN", "OUT"])
    rng = random.Random(6)
    start = now() - timedelta(hours=10)
    reads, expected_open, expected_visits = [], 0, 0
    for car in range(200):
        plate, t = f"BF{car:03d}XY", start + timedelta(seconds=rng.randrange(0, 3000))
        reads.append(("IN", plate, t))
        expected_visits += 1
        if car < 150:
            reads.append(("OUT", plate, t + timedelta(minutes=rng.randrange(5, 200))))
            if car < 50:  # came back later and is still inside
                reads.append(("IN", plate, t + timedelta(minutes=300)))
                expected_visits += 1
                expected_open += 1
        else:
            expected_open += 1
    assert len(reads) == 400
    reads += [("OUT", f"GONE{n:03d}", start + timedelta(minutes=n)) for n in range(100)]  # entries never read
    rng.shuffle(reads)
    frames = [
        plate_read(f"buf-{i:04d}", lane, plate, t, retransmit=True, local_action="open")
        for i, (lane, plate, t) in enumerate(reads)
    ]

    async def drive():
        async with LaneController(parkgate, device["token"]) as lane:
            await lane.hello()
            decisions, pending = {}, list(frames)
            in_flight = 0
            while pending or in_flight:
                while pending and in_flight < 32:  # the protocol's window
                    await lane.send(pending.pop())
                    in_flight += 1
                answer = await lane.recv(timeout=30)
                if answer.get("type") == "decision":
                    decisions[answer["read_id"]] = answer
                    in_flight -= 1
            return decisions

    decisions = asyncio.run(drive())
    assert len(decisions) == 500
    assert {(d["action"], d["reason"], d["command_id"]) for d in decisions.values()} == {("none", "stale", None)}
    assert BarrierCommand.objects.count() == 0
    assert Visit.objects.count() == expected_visits
    assert Visit.objects.filter(exited_at__isnull=True).count() == expected_open
    for car in range(150):  # every exited car's first visit ends at its exit read, by captured_at
        first = Visit.objects.filter(plate=f"BF{car:03d}XY").order_by("entered_at").first()
        assert first.exit_read is not None and first.exit_read.plate == first.plate
        assert first.exited_at > first.entered_at
    assert PlateRead.objects.filter(unpaired_exit=True).count() == 100


def test_bad_frames_get_errors_and_the_connection_stays(parkgate, world):
    device = make_device("TST1", ["IN"])
    big = "x" * (65 * 1024)

    async def drive():
        codes = []
        async with LaneController(parkgate, device["token"]) as lane:
            await lane.send(plate_read("early", "IN", "AB1", now()))
            codes.append(await lane.recv())
            await lane.hello()
            for raw in (
                b"\x00\x01binary",
                "{not json",
                "[1, 2]",
                json.dumps({"no": "type"}),
                json.dumps({"type": "nonsense", "read_id": "r0"}),
                json.dumps({"type": "plate_read", "lane": "IN"}),
                json.dumps(plate_read("r1", "IN", "AB1", now()) | {"score": 1.5}),
                json.dumps(plate_read("r2", "IN", "AB1", now()) | {"score": "high"}),
                json.dumps(plate_read("r3", "IN", "AB1", now()) | {"captured_at": "yesterday"}),
                json.dumps(plate_read("r4", "IN", "AB1", now()) | {"captured_at": "2026-11-21T05:31:02"}),
                json.dumps(plate_read("x" * 65, "IN", "AB1", now())),
                json.dumps(plate_read("r5", "IN", "AB1", now()) | {"candidates": "AB2"}),
                json.dumps(plate_read("r6", "IN", "AB1", now()) | {"local_action": "maybe"}),
                json.dumps(plate_read("r7", "NOPE", "AB1", now())),
                json.dumps({"type": "heartbeat", "barriers": {"IN": "ajar"}}),
                json.dumps({"type": "command_result", "command_id": "c-nope", "status": "done"}),
                json.dumps({"type": "plate_read", "padding": big}),
            ):
                await lane.ws.send(raw)
                codes.append(await lane.recv())
            ok = await lane.read("IN", "STILL0K")
        return codes, ok

    errors, ok = asyncio.run(drive())
    assert [e["type"] for e in errors] == ["error"] * len(errors)
    assert [e["code"] for e in errors] == [
        "hello_first", "bad_message", "bad_message", "bad_message", "bad_message", "bad_message", "bad_message",
        "bad_message", "bad_message", "bad_message", "bad_message", "bad_message", "bad_message", "bad_message",
        "unknown_lane", "bad_message", "bad_message", "too_large",
    ]  # fmt: skip
    assert [e.get("read_id") for e in errors[5:15]] == [
        "r0", None, "r1", "r2", "r3", "r4", None, "r5", "r6", "r7",
    ]  # fmt: skip
    assert ok["type"] == "decision" and ok["reason"] == "unknown_vehicle"


def test_more_than_20_errors_a_minute_close_with_4008(parkgate, world):
    device = make_device("TST1", ["IN"])

    async def drive():
        async with LaneController(parkgate, device["token"]) as lane:
            await lane.hello()
            for _ in range(21):
                await lane.ws.send("nope")
            return await closed_code(lane)

    assert asyncio.run(drive()) == 4008


def test_a_frame_over_1_mib_closes_with_1009(parkgate, world):
    device = make_device("TST1", ["IN"])

    async def drive():
        async with LaneController(parkgate, device["token"]) as lane:
            await lane.hello()
            await lane.ws.send(json.dumps({"type": "heartbeat", "padding": "x" * (1024 * 1024 + 10)}))
            return await closed_code(lane)

    assert asyncio.run(drive()) == 1009


def test_other_protocol_versions_are_refused_with_4002(parkgate, world):
    device = make_device("TST1", ["IN"])

    async def drive():
        async with LaneController(parkgate, device["token"]) as lane:
            await lane.send({"type": "hello", "protocol": 2})
            error = await lane.recv()
            return error, await closed_code(lane)

    error, code = asyncio.run(drive())
    assert error["code"] == "unsupported_protocol" and code == 4002


def test_revocation_closes_the_live_connection_with_4401_and_the_token_stops_working(parkgate, server_env, world):
    import subprocess
    import sys

    device = make_device("TST1", ["IN"])

    async def drive():
        async with LaneController(parkgate, device["token"]) as lane:
            await lane.hello()
            await in_thread(
                subprocess.run,
                [sys.executable, str(ROOT / "manage.py"), "revoke_device", device["device_id"]],
                env=server_env,
                check=True,
                capture_output=True,
            )
            code = await closed_code(lane, timeout=10)
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(
                f"{parkgate.ws}/ws/device/", additional_headers={"Authorization": f"Bearer {device['token']}"}
            )
        return code, refused.value.response.status_code

    assert asyncio.run(drive()) == (4401, 403)
    assert Device.objects.get(pk=device["device_id"]).online is False


def test_enrolling_again_closes_the_connection_on_the_old_token_with_4009(parkgate, world):
    """Rotation = enrol again (spec 1.3): the old token stops working, and so does a connection still open on it,
    found by the enrolment's event or, when that is lost (Redis), by the next heartbeat. The new one is not touched."""
    device = make_device("TST1", ["IN"])

    async def connect(token: str) -> int:
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(
                f"{parkgate.ws}/ws/device/", additional_headers={"Authorization": f"Bearer {token}"}
            )
        return refused.value.response.status_code

    async def enrol_again() -> str:
        issued = await in_thread(services.device_enrolment_code_issue, device_id=device["device_id"])
        return (await in_thread(services.device_enrol, code=issued.code)).token

    async def drive():
        async with LaneController(parkgate, device["token"]) as old:
            await old.hello()
            token = await enrol_again()
            async with LaneController(parkgate, token) as new:
                await new.hello()
                by_event = await closed_code(old, timeout=10)
                decided = (await new.read("IN", "AB12CDE"))["type"]
                # the event lost: the token changes behind the connection's back, its next heartbeat finds out
                replaced_quietly = Device.objects.filter(pk=device["device_id"]).update
                await in_thread(replaced_quietly, token_hash="not-the-connection-s")
                await new.send({"type": "heartbeat", "barriers": {"IN": "closed"}})
                by_heartbeat = await closed_code(new, timeout=10)
        return by_event, decided, by_heartbeat, await connect(device["token"])

    assert asyncio.run(drive()) == (4009, "decision", 4009, 403)


def test_a_second_connection_replaces_the_first_with_4009(parkgate, world):
    device = make_device("TST1", ["IN"])

    async def drive():
        async with LaneController(parkgate, device["token"]) as first:
            await first.hello()
            async with LaneController(parkgate, device["token"]) as second:
                code = await closed_code(first)
                await second.hello()
                decision = await second.read("IN", "AB12CDE")
                online = await in_thread(lambda: Device.objects.get(pk=device["device_id"]).online)
                return code, decision, online

    code, decision, online = asyncio.run(drive())
    assert code == 4009 and decision["type"] == "decision" and online is True


def test_a_device_cannot_act_on_another_car_parks_lanes(parkgate, world):
    mine = make_device("TST1", ["IN"])
    make_device("TST2", ["X-IN"])
    other_lane = Lane.objects.get(code="X-IN")
    make_booking(world["two"], "OT12HER")

    async def drive():
        async with LaneController(parkgate, mine["token"]) as lane:
            await lane.hello()
            read = await lane.read("X-IN", "OT12HER")
            await lane.send({"type": "heartbeat", "barriers": {"X-IN": "open"}})
            heartbeat = await lane.recv()
            return read, heartbeat

    read, heartbeat = asyncio.run(drive())
    assert (read["type"], read["code"]) == ("error", "unknown_lane")
    assert heartbeat["code"] == "unknown_lane"
    assert not PlateRead.objects.filter(lane=other_lane).exists() and not Visit.objects.exists()


def test_online_state_heartbeats_and_offline_on_disconnect(parkgate, world):
    device = make_device("TST1", ["IN", "OUT"])

    async def drive():
        async with LaneController(parkgate, device["token"]) as lane:
            await lane.hello()
            online = await in_thread(lambda: Device.objects.get(pk=device["device_id"]).online)
            await lane.send({"type": "heartbeat", "barriers": {"IN": "fault", "OUT": "closed"}})
            await in_thread(wait_for, lambda: Device.objects.get(pk=device["device_id"]).barriers.get("IN") == "fault")
        return online

    assert asyncio.run(drive()) is True
    wait_for(lambda: not Device.objects.get(pk=device["device_id"]).online, timeout=2, message="offline within 2 s")


def test_manual_open_reaches_the_controller_and_its_result_is_recorded(parkgate, world):
    from django.contrib.auth.models import User

    device = make_device("TST1", ["IN", "OUT"])
    staff = User.objects.create_user("op", password="x")
    lane_in = Lane.objects.get(code="IN")

    async def drive():
        async with LaneController(parkgate, device["token"]) as lane:
            await lane.hello()
            command = await in_thread(
                services.barrier_open_manual, lane_id=lane_in.id, user=staff, reason="visitor without booking"
            )
            frame = await lane.recv()
            await lane.send({"type": "command_result", "command_id": command.command_id, "status": "done"})
            await lane.send({"type": "command_result", "command_id": command.command_id, "status": "failed"})
            return command, frame

    command, frame = asyncio.run(drive())
    assert frame == {
        "type": "command", "command_id": command.command_id, "lane": "IN", "action": "open", "reason": "manual",
        "expires_at": frame["expires_at"],
    }  # fmt: skip
    wait_for(lambda: BarrierCommand.objects.get(pk=command.pk).status == "done", message="done")
    wait_for(lambda: not Device.objects.get(pk=device["device_id"]).online, timeout=2)
    with pytest.raises(services.LaneOffline):
        services.barrier_open_manual(lane_id=lane_in.id, user=staff, reason="again")
    assert BarrierCommand.objects.get(pk=command.pk).status == "done"  # answered once


def test_allowlist_follows_booking_changes_and_settings_changes_send_a_new_welcome(parkgate, world):
    from apps.bookings.services import booking_cancel, booking_create

    device = make_device("TST1", ["IN"])
    carpark = world["one"]

    async def drive():
        async with LaneController(parkgate, device["token"]) as lane:
            await lane.hello()
            first = lane.allowlist
            booking = await in_thread(
                booking_create,
                carpark=carpark, arrival=now() + timedelta(hours=2), departure=now() + timedelta(days=1),
                customer_name="Ann", vehicles=[{"registration": "AL12 LOW"}], source="staff", price=0,
                allow_overbooking=True,
            )  # fmt: skip
            pushed = await lane.recv(timeout=15)
            blocklist = await lane.recv()
            await in_thread(booking_cancel, booking=booking)
            after_cancel = await lane.recv(timeout=15)
            await lane.recv()
            carpark.min_score = "0.80"
            await in_thread(carpark.save)
            welcome = await lane.recv(timeout=10)
            return first, pushed, blocklist, after_cancel, welcome

    first, pushed, blocklist, after_cancel, welcome = asyncio.run(drive())
    assert first["entries"] == []
    assert pushed["type"] == "allowlist" and pushed["version"] > first["version"]
    assert [(e["plate"], e["key"], e["kind"]) for e in pushed["entries"]] == [("AL12LOW", "A11210W", "booking")]
    assert blocklist == {"type": "blocklist", "plates": []}
    assert after_cancel["entries"] == [] and after_cancel["version"] > pushed["version"]
    assert welcome["type"] == "welcome" and welcome["settings"]["min_score"] == 0.8
    assert Booking.objects.get().status == "cancelled"
