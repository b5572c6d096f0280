"""The decision's hot path on PostgreSQL: the gateway passes the lane's id and the decision runs as three prepared
statements (lock + lane, facts, writes), planned once per connection; it decides exactly as the ORM path does."""

from django.db import connection

from apps.access import services
from apps.access.models import PlateRead, Visit
from apps.carparks.models import Lane
from tests.lanes.conftest import make_booking, make_device, now

_ids = iter(range(1, 1_000_000))


def decide(device_id: str, lane: Lane, plate: str, *, by_id: bool) -> dict:
    return services.plate_read_decide(
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
