"""The decision's statements (lock + lane, facts, the one-statement write) are prepared, planned once per connection,
and the one statement writes exactly the rows the ORM's helpers write."""

from datetime import datetime

from django.db import connection

from apps.access.decision import Decided, plate_read_decide
from apps.access.models import Alert, BarrierCommand, PlateRead, Visit
from apps.carparks.models import Lane
from tests.lanes.conftest import make_booking, make_device, now

_ids = iter(range(1, 1_000_000))


def decide(device_id: str, lane: Lane, plate: str, *, by_id: bool) -> dict:
    return plate_read_decide(
        device_id=device_id,
        read_id=f"h-{next(_ids)}",
        lane_code=lane.code,
        lane_id=lane.id if by_id else None,
        plate=plate,
        score=0.95,
        captured_at=now(),
    )


def test_the_prepared_path_decides_as_the_orm_path(world_db):
    carpark = world_db["one"]
    device = make_device("TST1", ["IN", "OUT"])["device_id"]
    entry, exit_ = Lane.objects.get(carpark=carpark, code="IN"), Lane.objects.get(carpark=carpark, code="OUT")
    for n, by_id in enumerate((False, True)):
        booking = make_booking(carpark, f"H0T{n}A")
        entered = decide(device, entry, f"H0T{n}A", by_id=by_id)
        assert (entered["action"], entered["reason"], entered["booking"]) == ("open", "booking", booking.reference)
        unknown = decide(device, entry, f"N0B0DY{n}", by_id=by_id)
        assert (unknown["action"], unknown["reason"]) == ("deny", "unknown_vehicle")
        left = decide(device, exit_, f"H0T{n}A", by_id=by_id)
        assert (left["action"], left["reason"]) == ("open", "departure")
        visit = Visit.objects.get(plate=f"H0T{n}A")
        assert visit.entry_lane == entry and visit.exit_lane == exit_ and visit.exited_at is not None
    assert PlateRead.objects.filter(lane=entry).count() == 4


def test_decisions_plan_their_statements_once_per_connection(world_db):
    carpark = world_db["one"]
    device = make_device("TST1", ["IN"])["device_id"]
    entry = Lane.objects.get(carpark=carpark, code="IN")
    for n in range(4):
        decide(device, entry, f"PL4N{n}", by_id=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements")
        prepared = cursor.fetchall()
    by_start = {statement.split()[0] + " " + statement.split()[1]: (g, c) for statement, g, c in prepared}
    assert set(by_start) >= {"SELECT pg_advisory_xact_lock(l.carpark_id::integer,", "SELECT 'duplicate',", "WITH r"}
    for generic, custom in by_start.values():
        assert custom == 0 and generic >= 1  # planned once (generic), never re-planned per run


def test_the_one_statement_writes_the_rows_an_orm_save_writes(world_db, monkeypatch):
    """Entries (booking, look-alike), a repeat, unknown vehicles (an alert), an exit: the rows written by the one
    data-modifying statement (a jsonb record per row) against those written by the ORM's save(), field by field."""
    script = [("IN", "AB12CDE"), ("IN", "AB12CDE"), ("IN", "N0B0DY1"), ("IN", "8Y11HND"), ("OUT", "AB12CDE")]
    runs = {}
    for carpark, lanes, one_statement in (
        (world_db["one"], ("IN", "OUT"), True),
        (world_db["two"], ("X-IN", "X-OUT"), False),
    ):
        with monkeypatch.context() as patch:
            if not one_statement:
                patch.setattr(Decided, "in_one_statement", lambda self: False)
            for plate in ("AB12CDE", "BY11HND"):
                make_booking(carpark, plate)
            device = make_device(carpark.code, list(lanes))["device_id"]
            lane = dict(
                zip(("IN", "OUT"), (Lane.objects.get(carpark=carpark, code=code) for code in lanes), strict=True)
            )
            for code, plate in script:
                decide(device, lane[code], plate, by_id=True)
        runs[one_statement] = {
            model.__name__: [comparable(row, lane) for row in model.objects.filter(carpark=carpark).order_by("id")]
            for model in (PlateRead, Visit, Alert)
        } | {"BarrierCommand": [comparable(c, lane) for c in BarrierCommand.objects.filter(lane__carpark=carpark)]}
    assert runs[True] == runs[False]
    assert [len(runs[True][name]) for name in ("PlateRead", "Visit", "Alert", "BarrierCommand")] == [5, 2, 1, 4]


def comparable(row, lanes: dict) -> dict:
    """A row's fields, with what differs between two runs made neutral: ids, times, the run's lanes and device."""
    lane_code = {lane.id: code for code, lane in lanes.items()}
    out = {}
    for field in type(row)._meta.concrete_fields:
        value = getattr(row, field.attname)
        if field.primary_key or field.attname in ("device_id", "read_id", "command_id", "carpark_id"):
            value = value is not None
        elif field.attname.endswith("lane_id"):
            value = lane_code.get(value)
        elif field.attname.endswith(("booking_id", "read_id")) or isinstance(value, datetime):
            value = value is not None
        elif field.attname == "decision":
            value = {k: v for k, v in value.items() if k not in ("read_id", "command_id", "expires_at", "booking")}
        out[field.attname] = value
    return out
