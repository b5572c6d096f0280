"""The flight-status feed behind the real services: normal form, matching bookings, idempotency, order, bad input."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.bookings import flights
from apps.bookings import services as bookings
from apps.bookings.models import Booking, FlightStatus
from apps.bookings.selectors import booking_as_dict
from apps.carparks.models import CarPark

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("raw", "normal"),
    [("BA118", "BA0118"), ("BA0118", "BA0118"), ("ba 118", "BA0118"), ("U2 8123", "U28123"), ("EZY22", "EZY0022"),
     ("BA-0118A", "BA0118A"), ("", ""), ("hello", ""), ("BA12345", "")],
)  # fmt: skip
def test_flight_number_normal_form(raw, normal):
    assert flights.flight_number_normal(raw) == normal


@pytest.fixture
def carpark():
    return CarPark.objects.create(code="FLT-1", name="Flights", capacity=50, timezone="Europe/London")


def book(carpark, flight: str, departure: datetime, plate: str = "FL1GHT") -> Booking:
    return bookings.booking_create(
        carpark=carpark, arrival=departure - timedelta(days=3), departure=departure, customer_name="Ann Flyer",
        vehicles=[{"registration": plate}], source="staff", price=Decimal("50.00"), flight_return=flight,
    )  # fmt: skip


def update(flight, day, status="delayed", scheduled=None, estimated=None, actual=None, **extra) -> dict:
    iso = lambda t: t.isoformat() if t else None  # noqa: E731
    return {"flight": flight, "date": day.isoformat(), "status": status, "scheduled": iso(scheduled),
            "estimated": iso(estimated), "actual": iso(actual), **extra}  # fmt: skip


def test_a_delay_moves_the_matched_bookings_due_out_and_shows_in_its_json(carpark):
    departure = datetime(2027, 7, 17, 15, 0, tzinfo=UTC)
    scheduled = departure - timedelta(minutes=30)
    delayed = book(carpark, "ba 118", departure)
    other_day = book(carpark, "BA118", departure + timedelta(days=1), plate="OTH3R")
    assert booking_as_dict(delayed)["flights"] == {
        "outbound": "", "return": "BA 118", "return_estimated": None, "return_status": None,
    }  # fmt: skip

    [result] = flights.flight_statuses_report(
        updates=[update("BA0118", date(2027, 7, 17), scheduled=scheduled, estimated=scheduled + timedelta(hours=3))]
    )
    assert result == {"flight": "BA0118", "date": "2027-07-17", "result": "applied", "bookings": 1}
    delayed.refresh_from_db()
    assert delayed.return_status == "delayed" and delayed.return_estimated == scheduled + timedelta(hours=3)
    # the later of the booked departure and landing + the car park's baggage allowance (45 min by default)
    assert delayed.due_out == scheduled + timedelta(hours=3, minutes=45)
    assert booking_as_dict(delayed)["flights"]["return_estimated"] == "2027-07-17T17:30:00Z"
    assert booking_as_dict(delayed)["flights"]["return_status"] == "delayed"
    from apps.staff.selectors import expected_today  # the dashboard's departures show it too

    today = expected_today(carpark=carpark, field="departure", day_start=departure - timedelta(hours=1),
                           day_end=departure + timedelta(hours=1))  # fmt: skip
    assert (today["items"][0]["return_status"], today["items"][0]["return_estimated"]) == (
        "delayed", "2027-07-17T17:30:00Z"
    )  # fmt: skip
    other_day.refresh_from_db()
    assert other_day.return_status == "" and other_day.due_out == other_day.departure

    # landed early: the booked departure stands
    flights.flight_statuses_report(
        updates=[update("BA118", date(2027, 7, 17), "landed", scheduled, actual=scheduled - timedelta(minutes=20))]
    )
    delayed.refresh_from_db()
    assert delayed.return_status == "landed" and delayed.due_out == departure


def test_the_same_update_twice_and_an_older_one_change_nothing(carpark):
    departure = datetime(2027, 7, 17, 15, 0, tzinfo=UTC)
    scheduled = departure - timedelta(minutes=30)
    newer = update("BA118", date(2027, 7, 17), scheduled=scheduled, estimated=scheduled + timedelta(hours=2),
                   updated_at="2027-07-17T10:00:00Z")  # fmt: skip
    older = update("BA118", date(2027, 7, 17), scheduled=scheduled, estimated=scheduled + timedelta(hours=1),
                   updated_at="2027-07-17T09:00:00Z")  # fmt: skip
    results = flights.flight_statuses_report(updates=[newer, newer, older])
    assert [r["result"] for r in results] == ["applied", "unchanged", "stale"]
    assert FlightStatus.objects.get().estimated == scheduled + timedelta(hours=2)


def test_an_unknown_flight_is_kept_for_a_later_booking_and_expires(carpark):
    departure = datetime(2027, 7, 17, 15, 0, tzinfo=UTC)
    scheduled = departure - timedelta(minutes=30)
    [result] = flights.flight_statuses_report(
        updates=[update("LH 903", date(2027, 7, 17), scheduled=scheduled, estimated=scheduled + timedelta(hours=1))]
    )
    assert result["result"] == "applied" and result["bookings"] == 0
    later = book(carpark, "LH903", departure)
    assert later.return_status == "delayed" and later.return_ready_at == scheduled + timedelta(hours=1, minutes=45)
    # an amendment to another flight loses the match
    amended = bookings.booking_amend(booking=later, flight_return="LH904")
    assert amended.return_status == "" and amended.return_ready_at is None
    assert flights.flight_statuses_expire(now=datetime(2027, 7, 19, tzinfo=UTC)) == 0
    assert flights.flight_statuses_expire(now=datetime(2027, 7, 21, tzinfo=UTC)) == 1


def test_bad_updates_are_refused_with_a_reason(carpark):
    scheduled = datetime(2027, 7, 17, 14, 30, tzinfo=UTC)
    results = flights.flight_statuses_report(
        updates=[
            update("BA118", date(2027, 7, 17), scheduled=scheduled, estimated=scheduled + timedelta(days=3)),
            update("BA118", date(2027, 7, 17), "late", scheduled=scheduled),
            update("nonsense", date(2027, 7, 17), scheduled=scheduled),
            update("BA118", date(2027, 7, 17), scheduled=None),
            "not an object",
        ]
    )
    assert [r["result"] for r in results] == ["refused"] * 5
    assert "days away from the schedule" in results[0]["reason"]
    assert results[1]["reason"].startswith("status:") and results[2]["reason"].startswith("flight:")
    assert not FlightStatus.objects.exists()


def test_an_exit_uploaded_late_after_a_late_landing_is_not_charged_and_says_why(carpark):
    """The thread path's stale exit (a controller offline at the exit), applied as if the barrier had opened."""
    from apps.access.decision import plate_read_decide
    from apps.access.models import Visit
    from apps.accounting.models import CarParkRates, OverstayCharge
    from apps.carparks.models import Lane
    from apps.core.plates import lookalike_key
    from tests.lanes.conftest import make_device

    for code, direction in (("IN", "entry"), ("OUT", "exit")):
        Lane.objects.create(carpark=carpark, code=code, direction=direction)
    CarParkRates.objects.create(carpark=carpark, overstay_rate=Decimal("5.00"), overstay_unit="hour")
    now = timezone.now()
    departure = now - timedelta(hours=3)
    late = book(carpark, "BA118", departure, plate="ST4LE")
    Visit.objects.create(carpark=carpark, plate="ST4LE", lookalike_key=lookalike_key("ST4LE"),
                         entered_at=departure - timedelta(days=3), booking=late)  # fmt: skip
    scheduled = departure - timedelta(minutes=30)
    flights.flight_statuses_report(updates=[
        update("BA118", timezone.localtime(departure, carpark.tz).date(), "landed", scheduled,
               actual=scheduled + timedelta(hours=3)),
    ])  # fmt: skip
    device = make_device(carpark.code, ["IN", "OUT"])
    decision = plate_read_decide(
        device_id=device["device_id"], read_id="offline-exit", lane_code="OUT", plate="ST4LE", score=0.95,
        captured_at=now - timedelta(minutes=20), retransmit=True, local_action="open",
    )  # fmt: skip
    assert (decision["action"], decision["reason"]) == ("none", "stale")
    visit = Visit.objects.get(booking=late)
    assert visit.exited_at is not None and visit.overstay_minutes is None
    assert visit.charge_note.startswith("no overstay charge: return flight BA118 (landed)")
    assert not OverstayCharge.objects.exists()


def test_a_revoked_feed_token_stops_working():
    from apps.ground import feed

    token = feed.feed_token_create(name="provider")
    found = feed.feed_token_authenticate(token=token)
    assert found is not None and found.name == "provider" and found.token_hash != token
    feed.feed_token_revoke(token_id=found.pk)
    assert feed.feed_token_authenticate(token=token) is None
    assert feed.feed_token_authenticate(token="pgf_wrong") is None
