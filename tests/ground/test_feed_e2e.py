"""The flight-status feed from outside the process: `manage.py create_feed_token`, POSTs over HTTP to a real `serve`,
and a lane controller over WebSocket whose exit read follows the late flight (issue 31's "done means")."""

import asyncio
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from django.utils import timezone

from apps.access.models import Visit
from apps.accounting.models import CarParkRates, OverstayCharge
from apps.bookings import services as bookings
from apps.bookings.models import Booking
from apps.carparks.models import CarPark
from apps.core.plates import lookalike_key
from tests.clients import LaneController, enrol
from tests.support import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


def feed_token(env: dict[str, str]) -> str:
    args = [sys.executable, str(ROOT / "manage.py"), "create_feed_token", "--name", "test feed"]
    out = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def inside(carpark: CarPark, plate: str, flight: str, departure):
    """A booking whose car is in the car park (its visit open since its arrival)."""
    booking = bookings.booking_create(
        carpark=carpark, arrival=departure - timedelta(days=3), departure=departure, customer_name="Ann Flyer",
        vehicles=[{"registration": plate}], source="staff", price=Decimal("50.00"), flight_return=flight,
    )  # fmt: skip
    Visit.objects.create(
        carpark=carpark, plate=plate, lookalike_key=lookalike_key(plate), entered_at=booking.arrival, booking=booking
    )
    # Arrived, as its entry would have made it: a confirmed booking past its departure is the worker's no-show sweep's
    # (every 5 minutes), which would otherwise race this test.
    Booking.objects.filter(pk=booking.pk).update(status=Booking.Status.ARRIVED)
    booking.status = Booking.Status.ARRIVED
    return booking


def test_a_late_flight_fed_over_http_lets_its_car_out_without_an_overstay(parkgate, server_env, demo_world):
    carpark = CarPark.objects.get(code="LHR-T5")
    CarParkRates.objects.update_or_create(carpark=carpark, defaults={"overstay_rate": Decimal("5.00")})
    departure = timezone.now() - timedelta(hours=2)  # the exits below are two hours after the booked departure
    late = inside(carpark, "L4TE1", "ba 118", departure)
    on_time = inside(carpark, "0NT1ME", "EZY22", departure)
    day = timezone.localtime(departure, carpark.tz).date().isoformat()
    scheduled = departure - timedelta(minutes=30)

    token = feed_token(server_env)
    url = f"{parkgate.http}/api/ops/v1/flight-status"
    delayed = {"flight": "BA0118", "date": day, "status": "delayed", "scheduled": scheduled.isoformat(),
               "estimated": (scheduled + timedelta(hours=3)).isoformat(), "actual": None}  # fmt: skip
    assert httpx.post(url, json=delayed, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert httpx.post(url, json=delayed).status_code == 401
    auth = {"Authorization": f"Bearer {token}"}
    on_schedule = {**delayed, "flight": "EZY 22", "status": "landed", "estimated": None,
                   "actual": scheduled.isoformat()}  # fmt: skip
    answer = httpx.post(url, json=[delayed, on_schedule], headers=auth)
    assert answer.status_code == 202, answer.text
    assert [r["result"] for r in answer.json()["results"]] == ["applied", "applied"]
    again = httpx.post(url, json=delayed, headers=auth)  # idempotent
    assert again.status_code == 202 and again.json()["results"][0]["result"] == "unchanged"
    wrong = httpx.post(url, json={**delayed, "estimated": (scheduled + timedelta(days=4)).isoformat()}, headers=auth)
    assert wrong.status_code == 422 and "days away from the schedule" in wrong.json()["detail"]

    device = enrol(parkgate, server_env, "LHR-T5", ["N-IN", "N-OUT"])

    async def drive():
        async with LaneController(parkgate, device["token"]) as lane:
            await lane.hello()
            return await lane.read("N-OUT", "L4TE1"), await lane.read("N-OUT", "0NT1ME")

    out_late, out_on_time = asyncio.run(drive())
    assert (out_late["action"], out_late["reason"]) == ("open", "departure")
    assert (out_on_time["action"], out_on_time["reason"]) == ("open", "overstay")
    assert not OverstayCharge.objects.filter(booking=late).exists()
    assert OverstayCharge.objects.get(booking=on_time).amount == Decimal("5.00")  # 1 h past the grace: 1 hour
    visit = Visit.objects.get(booking=late)
    assert visit.exited_at is not None and visit.overstay_minutes is None
    assert visit.charge_note.startswith("no overstay charge: return flight BA 118 (delayed)")
    assert Visit.objects.get(booking=on_time).charge_note == ""


def test_staff_assign_tasks_see_keys_out_and_print_the_shift_sheet_over_http(parkgate):
    from apps.ground import keys
    from apps.ground.models import Task
    from apps.staff.services import staff_member_set
    from tests.accounting.test_e2e import PASSWORD, login, post

    carpark = CarPark.objects.create(code="MG-H", name="Meet Point", capacity=20, timezone="Europe/London")
    CarPark.objects.create(code="OTHER", name="Elsewhere", capacity=20)
    for name, role, code in (("sam", "supervisor", "MG-H"), ("dan", "driver", "MG-H"), ("eve", "operator", "OTHER")):
        staff_member_set(username=name, password=PASSWORD, carpark_codes=[code], role=role)
    arrival = timezone.now() + timedelta(hours=1)
    bookings.booking_create(
        carpark=carpark, arrival=arrival, departure=arrival + timedelta(days=1), customer_name="Hal Http",
        vehicles=[{"registration": "HT7P"}], source="staff", price=Decimal("50.00"), meet_and_greet=True,
    )  # fmt: skip
    collect = Task.objects.get(kind="collect")
    sam, eve = login(parkgate, "sam"), login(parkgate, "eve")
    board = sam.get("/ops/board/")
    assert board.status_code == 200 and f'data-task="{collect.pk}"' in board.text
    assert post(sam, f"/ops/tasks/{collect.pk}/assign", {"driver": "dan"}).status_code == 302
    collect.refresh_from_db()
    assert (collect.state, collect.driver.username) == ("assigned", "dan")
    assert post(sam, f"/ops/tasks/{collect.pk}/assign", {"driver": "eve"}).status_code == 400  # not a driver here
    assert post(eve, f"/ops/tasks/{collect.pk}/assign", {"driver": "dan"}).status_code == 404  # not her car park
    assert eve.get("/ops/driver/").status_code == 404  # not a driver

    keys.key_tag_move(carpark_id=carpark.pk, number="9", actor=collect.driver, to_driver=collect.driver)
    assert sam.get("/ops/keys-out.json").json() == {"carparks": {"MG-H": 1}}
    assert eve.get("/ops/keys-out.json").json() == {"carparks": {"OTHER": 0}}

    sheet = sam.get("/ops/sheet/MG-H/")
    assert sheet.status_code == 200 and "HT7P" in sheet.text
    pdf = sam.get("/ops/sheet/MG-H.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert eve.get("/ops/sheet/MG-H.pdf").status_code == 404
