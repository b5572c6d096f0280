"""Plate reads decided on the server's loop (apps.access.fastpath): the same decisions and rows as the thread path
(services.plate_read_decide), committed before the frame is returned, events only after the commit, the rarer reads
handed back to the full service untouched, and a policy changed by staff applied to the very next read."""

import asyncio
import time
from datetime import timedelta

import psycopg
import pytest

from apps.access import fastpath, services
from apps.access.models import Alert, PlateRead, Visit
from apps.bookings.models import Booking
from apps.carparks.models import CarPark, Lane
from apps.core import aiodb, events
from apps.core.plates import lookalike_key
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


@pytest.fixture
def batches(monkeypatch, settings) -> list[list[str]]:
    """One connection for the loop's decisions (so reads queue behind each other), and the plates of each batch the
    loop decides, in order."""
    settings.DECISION_CONNECTIONS = 1
    seen = []
    decide_batch = fastpath._decide_batch

    async def recorded(batch):
        seen.append([pending.read.plate for pending in batch])
        await decide_batch(batch)

    monkeypatch.setattr(fastpath, "_decide_batch", recorded)
    return seen


def test_reads_that_arrive_together_share_a_transaction_but_never_a_vehicle(world, published, batches):
    carpark = world["one"]
    booked = ["GR0UP1A", "GR0UP2B", "GR0UP3C", "GR0UP4D"]
    for plate in booked:
        make_booking(carpark, plate)
    device = make_device(carpark.code, ["IN"])["device_id"]
    lane = Lane.objects.get(carpark=carpark, code="IN")
    wave = [
        arguments(device, lane, "GR0UP1A"),  # decided alone: the connection was free
        arguments(device, lane, "GR0UP4D"),
        arguments(device, lane, "GR0UP1A"),  # the same vehicle again: the batch after the first's commit
        arguments(device, lane, "GR0UP2B"),
        arguments(device, lane, "NOBODY9"),
        arguments(device, lane, "OLD9999", captured_at=now() - timedelta(minutes=10), retransmit=True),
        arguments(device, lane, "GR0UP3C", read_id="same-id"),
        arguments(device, lane, "GR0UP2B"),  # again: a later batch than the first GR0UP2B
        arguments(device, lane, "NOBODY8", read_id="same-id"),  # a read_id sent twice: its first decision
    ]

    async def together():
        return await asyncio.gather(*(fastpath.plate_read_decide(**args) for args in wave))

    decisions = run_on_a_loop(together())
    assert [sorted(batch) for batch in batches] == [
        ["GR0UP1A"],
        ["GR0UP1A", "GR0UP2B", "GR0UP3C", "GR0UP4D", "NOBODY9", "OLD9999"],
        ["GR0UP2B", "NOBODY8"],
    ]
    for batch in batches:  # locked in key order: two batches never wait for each other's locks in a cycle
        assert [lookalike_key(plate) for plate in batch] == sorted(lookalike_key(plate) for plate in batch)
    summary = [None if d is None else (d["action"], d["reason"], d["duplicate"]) for d in decisions]
    assert summary == [
        ("open", "booking", False),
        ("open", "booking", False),
        ("open", "repeat", False),
        ("open", "booking", False),
        ("deny", "unknown_vehicle", False),
        None,  # stale: handed back to the full service, nothing written for it
        ("open", "booking", False),
        ("open", "repeat", False),
        ("open", "booking", True),
    ]
    assert decisions[-1] == decisions[6] | {"duplicate": True}
    assert sorted(Visit.objects.values_list("plate", flat=True)) == booked
    assert PlateRead.objects.count() == 7 and not PlateRead.objects.filter(plate="OLD9999").exists()
    assert Alert.objects.get().plate == "NOBODY9"
    assert [kind for kind, _ in published].count("read") == 7


def test_a_batch_that_fails_as_a_whole_hands_every_read_to_the_full_service(world, published, batches, monkeypatch):
    carpark = world["one"]
    for plate in ("RACE1AA", "RACE2BB"):
        make_booking(carpark, plate)
    device = make_device(carpark.code, ["IN"])["device_id"]
    lane = Lane.objects.get(carpark=carpark, code="IN")
    locked_with_facts = fastpath._locked_with_facts

    async def raced(conn, batch):
        await locked_with_facts(conn, batch)
        if len(batch) > 1:  # meanwhile another connection of the device decides one of its read_ids
            await in_thread(services.plate_read_decide, **arguments(device, lane, "OTHER99", read_id="raced"),
                            lane_code="IN")  # fmt: skip

    monkeypatch.setattr(fastpath, "_locked_with_facts", raced)
    wave = [
        arguments(device, lane, "FIRST11"),
        arguments(device, lane, "RACE1AA"),
        arguments(device, lane, "RACE2BB", read_id="raced"),
    ]

    async def together():
        decisions = await asyncio.gather(*(fastpath.plate_read_decide(**args) for args in wave))
        return [
            d or await in_thread(services.plate_read_decide, lane_code="IN", **a)
            for d, a in zip(decisions, wave, strict=True)
        ]

    first, race1, race2 = run_on_a_loop(together())
    assert batches == [["FIRST11"], ["RACE1AA", "RACE2BB"]]
    assert (first["reason"], race1["reason"], race1["duplicate"]) == ("unknown_vehicle", "booking", False)
    assert (race2["reason"], race2["duplicate"]) == ("unknown_vehicle", True)  # OTHER99's decision, not a booking
    assert sorted(PlateRead.objects.values_list("plate", flat=True)) == ["FIRST11", "OTHER99", "RACE1AA"]
    assert list(Visit.objects.values_list("plate", flat=True)) == ["RACE1AA"]


def test_a_batch_caught_in_a_deadlock_hands_its_reads_to_the_full_service(world, published, batches):
    """A decision thread that locks two vehicles (a candidate's match) in the other order than a batch: PostgreSQL
    ends the batch's transaction, whose reads are then decided by the full service, nothing lost or doubled."""
    carpark = world["one"]
    first, second = sorted(["KEYA1AA", "KEYB2BB"], key=lookalike_key)  # the batch locks `first` first
    for plate in (first, second):
        make_booking(carpark, plate)
    device = make_device(carpark.code, ["IN"])["device_id"]
    lane = Lane.objects.get(carpark=carpark, code="IN")
    wave = [arguments(device, lane, plate) for plate in ("FILLER1", first, second)]
    other = psycopg.connect(**aiodb.connect_kwargs("test-other-transaction"))
    lock = "SELECT pg_advisory_xact_lock(%s, hashtext(%s))"

    def lock_first_once_the_batch_waits() -> None:
        while not other.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").fetchone()[
            0
        ]:
            time.sleep(0.01)
        other.execute(lock, [carpark.pk, lookalike_key(first)])  # waits: a deadlock, which ends the batch
        other.commit()

    async def together():
        other.execute(lock, [carpark.pk, lookalike_key(second)])  # held by "a decision thread"
        decisions = await asyncio.gather(
            *(fastpath.plate_read_decide(**args) for args in wave), asyncio.to_thread(lock_first_once_the_batch_waits)
        )
        return decisions[:3], [await in_thread(services.plate_read_decide, lane_code="IN", **a) for a in wave[1:]]

    try:
        (filler, *on_loop), by_service = run_on_a_loop(together())
    finally:
        other.close()
    assert batches == [["FILLER1"], [first, second]]
    assert filler["reason"] == "unknown_vehicle" and on_loop == [None, None]
    assert [(d["reason"], d["duplicate"]) for d in by_service] == [("booking", False)] * 2
    assert sorted(Visit.objects.values_list("plate", flat=True)) == sorted([first, second])
    assert PlateRead.objects.count() == 3
