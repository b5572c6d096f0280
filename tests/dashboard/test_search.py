"""Staff search (apps.staff.selectors.search): what it finds, and that PostgreSQL finds it through indexes, not by
reading every booking, visit and read of the car parks (a car park keeps years of reads)."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.access.decision import plate_read_decide
from apps.access.models import PlateRead, Visit
from apps.agents.models import Agent
from apps.bookings.models import Booking, Vehicle
from apps.staff import selectors
from tests.lanes.conftest import build_world, make_booking, make_device, now

#: Tables that grow with the business: search must not scan them.
BIG_TABLES = ("bookings_booking", "bookings_vehicle", "access_visit", "access_plateread")


@pytest.fixture
def searched(db):
    one = build_world()["one"]  # TST2, the other car park, has a read of the same plate below
    booking = make_booking(one, "AB12 CDE")
    booking.agent, booking.agent_ref = Agent.objects.create(code="ag", name="Agent"), "AG-5512"
    booking.save(update_fields=["agent", "agent_ref"])
    make_booking(one, "XY99 ZZZ")  # another customer's
    here, there = make_device("TST1", ["IN", "OUT"]), make_device("TST2", ["X-IN"])

    def read(device, lane, plate, seconds_ago, **extra):
        return plate_read_decide(
            device_id=device["device_id"], read_id=f"{lane}-{plate}-{seconds_ago}", lane_code=lane, plate=plate,
            score=extra.pop("score", 0.95), captured_at=now() - timedelta(seconds=seconds_ago), **extra,
        )  # fmt: skip

    read(here, "IN", "AB12CDE", 9)
    # the exit's main plate was unusable, its candidate matched the visit: this read is found through the booking only
    exit_read = read(here, "OUT", "XX11XXX", 5, score=0.3, candidates=[{"plate": "AB12CDE", "score": 0.9}])
    assert (exit_read["reason"], exit_read["booking"]) == ("departure", booking.reference)
    read(here, "IN", "XY99ZZZ", 4)
    read(there, "X-IN", "AB12CDE", 3)  # the same plate at a car park this search may not see
    return {"booking": booking.reference, "carpark_ids": [one.id], "carpark": one}


@pytest.fixture
def crowded(searched):
    """The same car park with thousands of other bookings, visits and reads, analysed: PostgreSQL plans for a few
    rows as for a table it may read whole."""
    carpark, n = searched["carpark"], 4000
    template = Booking.objects.filter(carpark=carpark).first()
    bookings = Booking.objects.bulk_create(
        copy(template, id=None, reference=f"FL-{i:06d}", agent_ref=None) for i in range(n)
    )
    Vehicle.objects.bulk_create(
        Vehicle(booking=b, registration_raw=f"F{i}", registration=f"F{i}", lookalike_key=f"F{i}")
        for i, b in enumerate(bookings)
    )
    read, visit = PlateRead.objects.filter(carpark=carpark).first(), Visit.objects.filter(carpark=carpark).first()
    PlateRead.objects.bulk_create(
        copy(read, id=None, read_id=f"fl-{i}", plate=f"F{i}", lookalike_key=f"F{i}", booking_id=None) for i in range(n)
    )
    Visit.objects.bulk_create(
        copy(
            visit, id=None, entry_read_id=None, exit_read_id=None, plate=f"F{i}", lookalike_key=f"F{i}", booking_id=None
        )
        for i in range(n)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE " + ", ".join(BIG_TABLES))
    return searched


def copy(instance, **changes):
    return type(instance)(
        **({f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields} | changes)
    )


def found(query: str, carpark_ids: list[int]) -> tuple[list, list, list]:
    result = selectors.search(query=query, carpark_ids=carpark_ids)
    return (
        [b["reference"] for b in result["bookings"]],
        [(v["plate"], v["exited_at"] is not None) for v in result["visits"]],
        sorted(r["plate"] for r in result["reads"]),
    )


def test_a_plate_its_lookalike_a_reference_or_an_agent_reference_find_the_booking_its_visit_and_its_reads(searched):
    booking, carparks = searched["booking"], searched["carpark_ids"]
    expected = ([booking], [("AB12CDE", True)], ["AB12CDE", "XX11XXX"])
    assert found("ab12 cde", carparks) == expected
    assert found("A8I2CDE", carparks) == expected  # a look-alike of the plate, as a camera might have read it
    assert found(booking.lower(), carparks) == expected
    assert found("ag-5512", carparks) == expected
    assert found("AG-5512", carparks) == expected
    assert found("QQ00QQQ", carparks) == ([], [], [])
    assert found("ab12 cde", []) == ([], [], [])


def test_search_reads_bookings_visits_and_reads_through_indexes(crowded):
    """Every query of the search finds its rows through index conditions on more than the car park, not by reading
    its table whole or a car park's whole part of it (a car park keeps years of reads). Tables joined in for
    display (select_related) are left to the planner: it looks them up by primary key for a few rows."""
    with CaptureQueriesContext(connection) as queries:
        for query in ("ab12 cde", crowded["booking"], "ag-5512"):
            selectors.search(query=query, carpark_ids=crowded["carpark_ids"])
    whole = []
    with connection.cursor() as cursor:
        for query in queries.captured_queries:
            table = re.search(r'FROM "(\w+)"', query["sql"]).group(1)
            if table in BIG_TABLES:
                cursor.execute("EXPLAIN (FORMAT JSON) " + query["sql"])
                plan = cursor.fetchone()[0][0]["Plan"]
                whole += [f"{scan} in: {query['sql']}" for scan in unselective_scans(plan, table)]
    assert not whole, "\n".join(whole)


def unselective_scans(node: dict, table: str, scanned: str = "") -> list[str]:
    """The plan's scans of `table` that read all of it or all of a car park: sequential, or through an index with
    no condition but the car park."""
    scanned = node.get("Relation Name", scanned)  # a Bitmap Index Scan is named by its Bitmap Heap Scan parent
    kind, found = node["Node Type"], []
    if scanned == table and kind == "Seq Scan":
        found.append(f"Seq Scan on {table}")
    if scanned == table and kind.endswith("Index Scan"):
        columns = set(re.findall(r"(\w+)\)* (?:=|<|>|<=|>=) ", node.get("Index Cond", "")))
        if not columns - {"carpark_id"}:
            found.append(f"{kind} using {node['Index Name']} ({node.get('Index Cond', 'no condition')})")
    for child in node.get("Plans", []):
        found += unselective_scans(child, table, scanned)
    return found
