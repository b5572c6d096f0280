"""Nothing one stored read holds can break a page that lists it: a read stored before the database refused times
outside the window (read_captured_at_sane is NOT VALID, so such rows survive the migration) is still listed by the
dashboard's snapshot and socket, staff search and the admin."""

import asyncio
from datetime import timedelta

import psycopg
import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError

from apps.access.decision import plate_read_decide
from apps.access.models import PlateRead
from apps.staff.services import staff_member_set
from tests.dashboard.conftest import PASSWORD, dashboard_socket, login, next_frame
from tests.lanes.conftest import make_device, now
from tests.support import database_url_for

pytestmark = pytest.mark.django_db(transaction=True)

ODD_TIMES = ["9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+05:00", "infinity", "-infinity"]


def store_reads_from_before_the_constraint(device_id: str, lane_id: int, carpark_id: int) -> None:
    """Rows as a database held them before migration 0008: written directly, the constraint put back NOT VALID."""
    with psycopg.connect(database_url_for(settings.DATABASES["default"])) as conn:
        conn.execute("ALTER TABLE access_plateread DROP CONSTRAINT read_captured_at_sane")
        for n, when in enumerate(ODD_TIMES):
            conn.execute(
                "INSERT INTO access_plateread (device_id, lane_id, carpark_id, read_id, plate_raw, plate,"
                " lookalike_key, score, candidates, region, vehicle, retransmit, local_action, captured_at,"
                " received_at, action, reason, match, decision, unpaired_exit)"
                " VALUES (%s, %s, %s, %s, 'ODD1', 'ODD1', '0001', 0.9, '[]',"
                " '', '{}', false, '', %s, now(), 'deny', 'unknown_vehicle', '', '{}', false)",
                [device_id, lane_id, carpark_id, f"odd-{n}", when],
            )
        conn.commit()  # the foreign keys are checked at commit, before the table can be altered again
        conn.execute(
            "ALTER TABLE access_plateread ADD CONSTRAINT read_captured_at_sane CHECK (captured_at >= "
            "'2000-01-01T00:00:00Z' AND captured_at <= received_at + interval '10 minutes') NOT VALID"
        )


def test_a_read_stored_with_an_impossible_time_breaks_no_page(parkgate, world):
    carpark = world["one"]
    device = make_device("TST1", ["IN"])
    lane = carpark.lanes.get(code="IN")
    store_reads_from_before_the_constraint(device["device_id"], lane.id, carpark.id)
    staff_member_set(username="odd-op", password=PASSWORD, carpark_codes=["TST1"], role="operator")
    User.objects.create_superuser("odd-admin", password=PASSWORD)
    operator, admin = login(parkgate, "odd-op"), login(parkgate, "odd-admin")
    try:
        snapshot = operator.get("/dashboard/snapshot")
        search = operator.get("/dashboard/search", params={"q": "ODD1"})
        changelist = admin.get("/admin/access/plateread/")
        changes = [
            admin.get(f"/admin/access/plateread/{pk}/change/") for pk in PlateRead.objects.values_list("pk", flat=True)
        ]

        async def socket_snapshot():
            async with await dashboard_socket(parkgate, operator) as ws:
                return await next_frame(ws, timeout=10)

        frame = asyncio.run(socket_snapshot())
    finally:
        operator.close()
        admin.close()
    assert snapshot.status_code == 200
    tst1 = next(c for c in snapshot.json()["carparks"] if c["code"] == "TST1")
    assert len([r for r in tst1["reads"] if r["plate"] == "ODD1"]) == len(ODD_TIMES)
    assert search.status_code == 200 and search.text.count("ODD1") >= len(ODD_TIMES)
    assert changelist.status_code == 200 and "odd-admin" in changelist.text
    assert [c.status_code for c in changes] == [200] * len(ODD_TIMES)
    assert frame["type"] == "snapshot"


def test_the_database_refuses_a_new_read_outside_the_window(world):
    device = make_device("TST1", ["IN"])
    lane = world["one"].lanes.get(code="IN")
    fields = dict(
        device_id=device["device_id"], lane=lane, carpark=world["one"], plate_raw="X", plate="X", lookalike_key="X",
        score=0.9, action="deny", reason="unknown_vehicle", decision={},
    )  # fmt: skip
    for n, when in enumerate((now() + timedelta(minutes=11), now().replace(year=1999))):
        with pytest.raises(IntegrityError):
            PlateRead.objects.create(read_id=f"bad-{n}", captured_at=when, **fields)


def test_a_visit_stored_with_an_impossible_time_does_not_stop_its_vehicle_being_decided(world):
    """The decision's facts (one jsonb statement on both routes) hold the visit's times as text: a time Python cannot
    hold must not make every later read of that vehicle fail (answered `retry`, forever)."""
    carpark = world["one"]
    device = make_device("TST1", ["IN", "OUT"])
    with psycopg.connect(database_url_for(settings.DATABASES["default"])) as conn:
        conn.execute(
            "INSERT INTO access_visit (carpark_id, plate, lookalike_key, entered_at, closed_reason)"
            " VALUES (%s, 'ODD2', '0002', '9999-12-31T23:00:00-05:00', '')",
            [carpark.id],
        )
    decision = plate_read_decide(
        device_id=device["device_id"], read_id="odd-exit", lane_code="OUT", plate="ODD2", score=0.95,
        captured_at=now(),
    )  # fmt: skip
    assert decision["type"] == "decision" and decision["action"] == "open"
