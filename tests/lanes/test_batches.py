"""Plate reads decided on the one route (apps.access.decision): from the server's loop, batched onto a decision
thread, every kind of read (common or rare) decided and written in the batch's one transaction, committed before the
frame is returned, events only after the commit; a policy changed by staff applies to the very next read, and a batch
that fails as a whole is decided again read by read."""

import asyncio
import functools
import threading
import time
from datetime import timedelta

import psycopg
import pytest
from django.db import connections, transaction

from apps.access import decision
from apps.access.decision import batch as batch_module
from apps.access.decision import batcher
from apps.access.models import Alert, PlateRead, Visit
from apps.access.services import UnknownLane
from apps.bookings.models import Booking
from apps.carparks.models import CarPark, Lane
from apps.core import aiodb, events
from apps.core.plates import lookalike_key
from tests.lanes.conftest import in_thread, make_booking, make_device, now

pytestmark = pytest.mark.django_db(transaction=True)

_ids = iter(range(1, 1_000_000))


@pytest.fixture
def published(monkeypatch) -> list[tuple[str, str]]:
    """The (kind, plate or occupancy) car park events, as they leave: after the commit."""
    seen = []
    publish = events.publish_to_carpark

    def record(*, carpark_id, kind, data):
        transaction.on_commit(lambda: seen.append((kind, data.get("plate", data.get("occupancy")))))
        publish(carpark_id=carpark_id, kind=kind, data=data)

    monkeypatch.setattr(events, "publish_to_carpark", record)
    return seen


def run_on_a_loop(coro):
    try:
        return asyncio.run(coro)
    finally:
        batcher.connections_close()  # before the test database goes


def arguments(device_id: str, lane: Lane, plate: str, **extra) -> dict:
    return {
        "device_id": device_id,
        "read_id": extra.pop("read_id", f"f-{next(_ids)}"),
        "lane_id": lane.id,
        "plate": plate,
        "score": extra.pop("score", 0.95),
        "captured_at": extra.pop("captured_at", None) or now(),
    } | extra


SCRIPT = [  # (lane, plate, extra): a day at the barrier, with every kind of outcome
    ("in", "AB12CDE", {}),  # booking, exact
    ("in", "AB12CDE", {}),  # repeat within the window
    ("in", "N0B0DY1", {}),  # unknown vehicle, alert
    ("in", "N0B0DY1", {}),  # unknown again: no second alert
    ("in", "8Y11HND", {}),  # look-alike of BY11HND's booking
    ("in", "XY99ZZZ", {"score": 0.2}),  # low confidence
    ("out", "AB12CDE", {}),  # departure, visit closed
    ("out", "GH05TCA", {}),  # exit without a visit
    # misread, its candidate booked: the visit opens under CA11DTE (written through the ORM) ...
    ("in", "QQ99QQQ", {"score": 0.3, "candidates": [{"plate": "CA11DTE", "score": 0.85}]}),
    ("out", "CA11DTE", {}),  # ... so the exit, read well, ends it
    ("in", "OLD1234", {"captured_at": now() - timedelta(minutes=10), "retransmit": True}),  # stale
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


def test_every_kind_of_read_is_decided_and_written_on_the_one_route(world, published):
    carpark = world["one"]
    for plate in ("AB12CDE", "BY11HND", "CA11DTE"):
        make_booking(carpark, plate)
    device = make_device(carpark.code, ["IN", "OUT"])["device_id"]
    lane = {"in": Lane.objects.get(carpark=carpark, code="IN"), "out": Lane.objects.get(carpark=carpark, code="OUT")}

    async def one_after_another():
        return [await decision.decide(**arguments(device, lane[name], plate, **extra)) for name, plate, extra in SCRIPT]

    frames = run_on_a_loop(one_after_another())
    for frame in frames:
        assert (frame["command_id"] is not None) == (frame["action"] == "open") and not frame["duplicate"]
    assert [(f["action"], f["reason"], f["match"]) for f in frames] == [
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
    written = what_was_written(carpark)
    assert [(plate, reason) for plate, _action, reason, *_ in written["reads"]] == [
        (plate, frame["reason"]) for (_lane, plate, _extra), frame in zip(SCRIPT, frames, strict=True)
    ]
    assert written["visits"] == [
        ("8Y11HND", False, "BY11HND"), ("AB12CDE", True, "AB12CDE"), ("CA11DTE", True, "CA11DTE"),
        ("OLD1234", False, None),  # a buffered read: applied to visits as if the barrier had opened
    ]  # fmt: skip
    assert written["bookings"] == [("AB12CDE", "departed"), ("BY11HND", "arrived"), ("CA11DTE", "departed")]
    assert written["alerts"].count(("N0B0DY1", "unknown_vehicle")) == 1
    assert written["commands"] == [
        ("AB12CDE",), ("AB12CDE",), ("8Y11HND",), ("AB12CDE",), ("GH05TCA",), ("QQ99QQQ",), ("CA11DTE",)
    ]  # fmt: skip
    assert [kind for kind, _ in published].count("read") == len(SCRIPT)
    assert ("visit", "AB12CDE") in published and ("occupancy", None) in published


def test_a_resent_read_is_a_duplicate_and_writes_nothing(world, published):
    carpark = world["one"]
    make_booking(carpark, "DU9L1CA")
    device = make_device(carpark.code, ["IN"])["device_id"]
    args = arguments(device, Lane.objects.get(carpark=carpark, code="IN"), "DU9L1CA")

    async def twice():
        return await decision.decide(**args), await decision.decide(**args | {"retransmit": True})

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
        return await decision.decide(**arguments(device, lane, plate, score=0.8))

    async def before_and_after():
        before = await read("P0L1CY1")  # the lane's policies now cached with the facts' parameters
        await in_thread(lambda: CarPark.objects.filter(pk=carpark.pk).update(min_score=0.9))
        return before, await read("P0L1CY2")

    before, after = run_on_a_loop(before_and_after())
    assert (before["action"], before["reason"]) == ("open", "booking")
    assert (after["action"], after["reason"]) == ("deny", "low_confidence")


def test_a_lane_deleted_meanwhile_fails_its_read_alone(world, batches):
    carpark = world["one"]
    device = make_device(carpark.code, ["IN"])["device_id"]
    gone = Lane.objects.create(carpark=carpark, code="GONE", direction="entry")
    wave = [
        arguments(device, Lane.objects.get(carpark=carpark, code="IN"), "FILLER1"),
        arguments(device, gone, "AB12CDE"),
        arguments(device, Lane.objects.get(carpark=carpark, code="IN"), "NOBODY1"),
    ]
    gone.delete()

    async def together():
        return await asyncio.gather(*(decision.decide(**args) for args in wave), return_exceptions=True)

    filler, lost, nobody = run_on_a_loop(together())
    assert sorted(map(sorted, batches)) == [["AB12CDE", "NOBODY1"], ["FILLER1"]]
    assert isinstance(lost, UnknownLane)
    assert (filler["reason"], nobody["reason"]) == ("unknown_vehicle", "unknown_vehicle")
    assert sorted(PlateRead.objects.values_list("plate", flat=True)) == ["FILLER1", "NOBODY1"]


@pytest.fixture
def batches(monkeypatch) -> list[list[str]]:
    """One decision thread (so reads queue behind each other), and the plates of each transaction it decides, in
    the order their vehicles are locked."""
    monkeypatch.setattr(batcher._batchers, "slots", 1)
    seen = []
    locked_with_facts = batch_module._locked_with_facts

    def recorded(batch):
        seen.append([deciding.read_in.read.plate for deciding in batch])
        locked_with_facts(batch)

    monkeypatch.setattr(batch_module, "_locked_with_facts", recorded)
    return seen


def test_reads_that_arrive_together_share_a_transaction_but_never_a_vehicle(world, published, batches):
    carpark = world["one"]
    booked = ["GR0UP1A", "GR0UP2B", "GR0UP3C", "GR0UP4D"]
    for plate in booked:
        make_booking(carpark, plate)
    device = make_device(carpark.code, ["IN"])["device_id"]
    lane = Lane.objects.get(carpark=carpark, code="IN")
    wave = [
        arguments(device, lane, "GR0UP1A"),  # decided alone: the thread was free
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
        return await asyncio.gather(*(decision.decide(**args) for args in wave))

    decisions = run_on_a_loop(together())
    assert [sorted(batch) for batch in batches] == [
        ["GR0UP1A"],
        ["GR0UP1A", "GR0UP2B", "GR0UP3C", "GR0UP4D", "NOBODY9", "OLD9999"],
        ["GR0UP2B", "NOBODY8"],
    ]
    for batch in batches:  # locked in key order: two batches never wait for each other's locks in a cycle
        assert [lookalike_key(plate) for plate in batch] == sorted(lookalike_key(plate) for plate in batch)
    summary = [(d["action"], d["reason"], d["duplicate"]) for d in decisions]
    assert summary == [
        ("open", "booking", False),
        ("open", "booking", False),
        ("open", "repeat", False),
        ("open", "booking", False),
        ("deny", "unknown_vehicle", False),
        ("none", "stale", False),  # a rare read, in the same batch as the common ones
        ("open", "booking", False),
        ("open", "repeat", False),
        ("open", "booking", True),
    ]
    assert decisions[-1] == decisions[6] | {"duplicate": True}
    assert sorted(Visit.objects.values_list("plate", flat=True)) == [*booked, "OLD9999"]
    assert PlateRead.objects.count() == 8 and PlateRead.objects.filter(plate="OLD9999", reason="stale").exists()
    assert Alert.objects.get().plate == "NOBODY9"
    assert [kind for kind, _ in published].count("read") == 8


def _elsewhere(func, /, **kwargs):
    """Run `func` on another thread (another database connection) and wait for it, as another server would."""
    out = {}

    def run():
        try:
            out["result"] = func(**kwargs)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return out["result"]


def test_a_batch_that_fails_as_a_whole_is_decided_again_read_by_read(world, published, batches, monkeypatch):
    carpark = world["one"]
    for plate in ("RACE1AA", "RACE2BB"):
        make_booking(carpark, plate)
    device = make_device(carpark.code, ["IN"])["device_id"]
    lane = Lane.objects.get(carpark=carpark, code="IN")
    locked_with_facts = batch_module._locked_with_facts

    def raced(batch):
        locked_with_facts(batch)
        if len(batch) > 1:  # meanwhile another connection of the device decides one of its read_ids
            _elsewhere(decision.plate_read_decide, **arguments(device, lane, "OTHER99", read_id="raced"))

    monkeypatch.setattr(batch_module, "_locked_with_facts", raced)
    wave = [
        arguments(device, lane, "FIRST11"),
        arguments(device, lane, "RACE1AA"),
        arguments(device, lane, "RACE2BB", read_id="raced"),
    ]

    async def together():
        return await asyncio.gather(*(decision.decide(**args) for args in wave))

    first, race1, race2 = run_on_a_loop(together())
    assert batches == [["FIRST11"], ["RACE1AA", "RACE2BB"], ["OTHER99"], ["RACE1AA"], ["RACE2BB"]]
    assert (first["reason"], race1["reason"], race1["duplicate"]) == ("unknown_vehicle", "booking", False)
    assert (race2["reason"], race2["duplicate"]) == ("unknown_vehicle", True)  # OTHER99's decision, not a booking
    assert sorted(PlateRead.objects.values_list("plate", flat=True)) == ["FIRST11", "OTHER99", "RACE1AA"]
    assert list(Visit.objects.values_list("plate", flat=True)) == ["RACE1AA"]


def test_a_batch_caught_in_a_deadlock_is_decided_again_read_by_read(world, published, batches):
    """Another transaction that locks two vehicles (a candidate's match) in the other order than a batch: PostgreSQL
    ends the batch's transaction, whose reads are then decided one by one, nothing lost or doubled."""
    carpark = world["one"]
    first, second = sorted(["KEYA1AA", "KEYB2BB"], key=lookalike_key)  # the batch locks `first` first
    for plate in (first, second):
        make_booking(carpark, plate)
    device = make_device(carpark.code, ["IN"])["device_id"]
    lane = Lane.objects.get(carpark=carpark, code="IN")
    wave = [arguments(device, lane, plate) for plate in ("FILLER1", first, second)]
    # PostgreSQL checks a lock wait for a deadlock once, deadlock_timeout after it begins, and ends the transaction
    # that finds it. So that the batch finds it whatever the machine's load: the other transaction never looks (its
    # own deadlock_timeout is long), and the cycle closes as the batch starts its wait for `second`. A third
    # transaction holds `first` until both the batch and the other are queued for it, in that order.
    connect = functools.partial(psycopg.connect, **aiodb.connect_kwargs("test-other-transaction"))
    other, holder = connect(), connect()
    other.execute("SET deadlock_timeout = '10min'")
    lock = "SELECT pg_advisory_xact_lock(%s, hashtext(%s))"
    queued = (
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND classid = %s"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )

    def until_queued(count: int) -> None:
        with connect(autocommit=True) as probe:
            while probe.execute(queued, [carpark.pk]).fetchone()[0] < count:
                time.sleep(0.01)

    def lock_first_after_the_batch() -> None:
        until_queued(1)  # the batch, behind the holder
        other.execute(lock, [carpark.pk, lookalike_key(first)])  # waits until the batch's transaction is ended
        other.commit()

    def release_first_once_both_wait() -> None:
        until_queued(2)
        holder.commit()  # the batch takes `first`, then waits for `second`: the cycle, found by the batch

    async def together():
        other.execute(lock, [carpark.pk, lookalike_key(second)])  # held by "another decision"
        holder.execute(lock, [carpark.pk, lookalike_key(first)])
        decisions = await asyncio.gather(
            *(decision.decide(**args) for args in wave),
            asyncio.to_thread(lock_first_after_the_batch),
            asyncio.to_thread(release_first_once_both_wait),
        )
        return decisions[:3]

    try:
        filler, *decided = run_on_a_loop(together())
    finally:
        other.close()
        holder.close()
    assert batches == [["FILLER1"], [first, second], [first], [second]]
    assert filler["reason"] == "unknown_vehicle"
    assert [(d["reason"], d["duplicate"]) for d in decided] == [("booking", False)] * 2
    assert sorted(Visit.objects.values_list("plate", flat=True)) == sorted([first, second])
    assert PlateRead.objects.count() == 3
