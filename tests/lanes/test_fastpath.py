"""Plate reads decided on the server's loop (apps.access.fastpath): the same decisions and rows as the thread path
(services.plate_read_decide), committed before the frame is returned, events only after the commit, the rarer reads
handed back to the full service untouched, and a policy changed by staff applied to the very next read."""

import asyncio
from datetime import timedelta

import pytest

from apps.access import fastpath, services
from apps.access.models import Alert, PlateRead, Visit
from apps.bookings.models import Booking
from apps.carparks.models import CarPark, Lane
from apps.core import events
from tests.lanes.conftest import in_thread, make_booking, make_device, now

pytestmark = pytest.mark.django_db(transaction=True)

_ids = iter(range(1, 1_000_000))


@pytest.fixture
def published(monkeypatch) -> list[tuple[str, str]]:
    """The (kind, plate or occupancy) events the loop path publishes."""
    seen = []

    def record(*, carpark_id, kind, data):
        seen.append((kind, data.get("plate", data.get("occupancy"))))

    monkeypatch.setattr(events, "publish_committed_to_carpark", record)
    return seen


def run_on_a_loop(coro):
    async def main():
        try:
            return await coro
        finally:
            await fastpath.close()

    return asyncio.run(main())


def arguments(device_id: str, lane: Lane, plate: str, **extra) -> dict:
    return {
        "device_id": device_id,
        "read_id": extra.pop("read_id", f"f-{next(_ids)}"),
        "lane_id": lane.id,
        "plate": plate,
        "score": extra.pop("score", 0.95),
        "captured_at": extra.pop("captured_at", None) or now(),
    } | extra


async def on_the_loop_or_thread(args: dict) -> tuple[str, dict]:
    """As the gateway does: the loop first, the full service (on a thread) for what the loop hands back."""
    decision = await fastpath.plate_read_decide(**args)
    if decision is not None:
        return "loop", decision
    lane_code = await in_thread(lambda: Lane.objects.get(pk=args["lane_id"]).code)
    return "thread", await in_thread(services.plate_read_decide, lane_code=lane_code, **args)


SCRIPT = [  # (lane, plate, extra): a day at the barrier, with every common outcome
    ("in", "AB12CDE", {}),  # booking, exact
    ("in", "AB12CDE", {}),  # repeat within the window
    ("in", "N0B0DY1", {}),  # unknown vehicle, alert
    ("in", "N0B0DY1", {}),  # unknown again: no second alert
    ("in", "8Y11HND", {}),  # look-alike of BY11HND's booking
    ("in", "XY99ZZZ", {"score": 0.2}),  # low confidence
    ("out", "AB12CDE", {}),  # departure, visit closed
    ("out", "GH05TCA", {}),  # exit without a visit
    # misread, its candidate booked: the full service, which opens the visit under CA11DTE ...
    ("in", "QQ99QQQ", {"score": 0.3, "candidates": [{"plate": "CA11DTE", "score": 0.85}]}),
    ("out", "CA11DTE", {}),  # ... so the exit, read well, ends it
    ("in", "OLD1234", {"captured_at": now() - timedelta(minutes=10), "retransmit": True}),  # stale: the full service
]


def what_was_written(carpark: CarPark) -> dict:
    return {
        "reads": list(
            PlateRead.objects.filter(carpark=carpark)
            .order_by("id")
            .values_list("plate", "action", "reason", "match", "booking__vehicles__registration", "unpaired_exit")
        ),
        "visits": sorted(
            (v.plate, v.exited_at is not None, v.booking.vehicles.get().registration if v.booking else None)
            for v in Visit.objects.filter(carpark=carpark)
        ),
        "bookings": sorted(Booking.objects.filter(carpark=carpark).values_list("vehicles__registration", "status")),
        "alerts": sorted(Alert.objects.filter(carpark=carpark).values_list("plate", "reason")),
        "commands": list(
            PlateRead.objects.filter(carpark=carpark, command__isnull=False).order_by("id").values_list("plate")
        ),
    }


def test_the_loop_decides_and_writes_as_the_thread_path_and_hands_back_the_rare_reads(world, published):
    runs = {}
    for carpark, lanes, on_loop in ((world["one"], ("IN", "OUT"), True), (world["two"], ("X-IN", "X-OUT"), False)):
        for plate in ("AB12CDE", "BY11HND", "CA11DTE"):
            make_booking(carpark, plate)
        device = make_device(carpark.code, list(lanes))["device_id"]
        lane = dict(zip(("in", "out"), (Lane.objects.get(carpark=carpark, code=code) for code in lanes), strict=True))
        frames = []
        for lane_name, plate, extra in SCRIPT:
            args = arguments(device, lane[lane_name], plate, **extra)
            if on_loop:
                where, frame = run_on_a_loop(on_the_loop_or_thread(args))
            else:
                where, frame = "thread", services.plate_read_decide(lane_code=lane[lane_name].code, **args)
            assert (frame["command_id"] is not None) == (frame["action"] == "open")
            booking = Booking.objects.filter(reference=frame["booking"]).values_list("vehicles__registration").first()
            ids = ("read_id", "command_id", "expires_at", "booking")  # each run's own
            frames.append((where, {k: v for k, v in frame.items() if k not in ids} | {"booked": booking}))
        runs[on_loop] = frames, what_was_written(carpark)

    loop_frames, loop_rows = runs[True]
    thread_frames, thread_rows = runs[False]
    assert [where for where, _ in loop_frames] == ["loop"] * 8 + ["thread", "loop", "thread"]
    assert [frame for _, frame in loop_frames] == [frame for _, frame in thread_frames]
    assert [(f["action"], f["reason"], f["match"]) for _, f in loop_frames] == [
        ("open", "booking", "exact"),
        ("open", "repeat", "exact"),
        ("deny", "unknown_vehicle", None),
        ("deny", "unknown_vehicle", None),
        ("open", "booking", "lookalike"),
        ("deny", "low_confidence", None),
        ("open", "departure", "exact"),
        ("open", "no_visit", None),
        ("open", "booking", "candidate"),
        ("open", "departure", "exact"),
        ("none", "stale", None),
    ]
    assert loop_rows == thread_rows
    assert ("CA11DTE", True, "CA11DTE") in loop_rows["visits"]
    assert loop_rows["alerts"].count(("N0B0DY1", "unknown_vehicle")) == 1
    assert loop_rows["commands"] == [
        ("AB12CDE",),
        ("AB12CDE",),
        ("8Y11HND",),
        ("AB12CDE",),
        ("GH05TCA",),
        ("QQ99QQQ",),
        ("CA11DTE",),
    ]
    assert ("read", "AB12CDE") in published and ("visit", "AB12CDE") in published and ("occupancy", None) in published


def test_a_resent_read_is_a_duplicate_and_writes_nothing(world, published):
    carpark = world["one"]
    make_booking(carpark, "DU9L1CA")
    device = make_device(carpark.code, ["IN"])["device_id"]
    args = arguments(device, Lane.objects.get(carpark=carpark, code="IN"), "DU9L1CA")

    async def twice():
        return await fastpath.plate_read_decide(**args), await fastpath.plate_read_decide(**args | {"retransmit": True})

    first, again = run_on_a_loop(twice())
    assert first["duplicate"] is False and again == first | {"duplicate": True}
    assert PlateRead.objects.count() == 1 and Visit.objects.count() == 1
    assert [kind for kind, _ in published].count("read") == 1  # nothing published for the duplicate


def test_a_policy_changed_by_staff_applies_to_the_next_read(world, published):
    carpark = world["one"]
    device = make_device(carpark.code, ["IN"])["device_id"]
    lane = Lane.objects.get(carpark=carpark, code="IN")
    make_booking(carpark, "P0L1CY1")
    make_booking(carpark, "P0L1CY2")

    async def read(plate: str) -> dict:
        return await fastpath.plate_read_decide(**arguments(device, lane, plate, score=0.8))

    async def before_and_after():
        before = await read("P0L1CY1")  # the lane's policies now cached with the facts' parameters
        await in_thread(lambda: CarPark.objects.filter(pk=carpark.pk).update(min_score=0.9))
        return before, await read("P0L1CY2")

    before, after = run_on_a_loop(before_and_after())
    assert (before["action"], before["reason"]) == ("open", "booking")
    assert (after["action"], after["reason"]) == ("deny", "low_confidence")


def test_an_unknown_lane_is_handed_back(world):
    device = make_device(world["one"].code, ["IN"])["device_id"]
    gone = Lane.objects.create(carpark=world["one"], code="GONE", direction="entry")
    args = arguments(device, gone, "AB12CDE")
    gone.delete()
    assert run_on_a_loop(fastpath.plate_read_decide(**args)) is None
    assert not PlateRead.objects.exists()
