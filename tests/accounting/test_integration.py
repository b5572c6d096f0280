"""The ledger behind the real services: bookings' booking_create / booking_amend / booking_cancel (their signals),
and the lane controllers' exit engine (access's visit_overstayed signal) for overstay charges."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.access import services as access
from apps.access.decision import plate_read_decide
from apps.access.models import Visit
from apps.accounting import chart, selectors
from apps.accounting.ledger import PeriodClosed
from apps.accounting.models import CarParkRates, LedgerLine, OverstayCharge
from apps.accounting.services import period_close
from apps.bookings import services as bookings
from apps.bookings.models import Booking
from apps.carparks.models import Lane
from apps.core.plates import lookalike_key

pytestmark = pytest.mark.django_db

D = Decimal


def now() -> datetime:
    return datetime.now(UTC)


def book(carpark, *, agent=None, price="80.00", commission=None, plate="AB12CDE", **extra) -> Booking:
    arrival = extra.pop("arrival", now() + timedelta(days=2))
    return bookings.booking_create(
        carpark=carpark,
        arrival=arrival,
        departure=extra.pop("departure", arrival + timedelta(days=4)),
        customer_name="Jane Smith",
        vehicles=[{"registration": plate}],
        source="api" if agent else "staff",
        price=D(price),
        agent=agent,
        agent_ref=f"REF-{plate}" if agent else None,
        commission=None if commission is None else D(commission),
    )


def sums(**filters) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for line in LedgerLine.objects.filter(**filters).select_related("account"):
        out[line.account.code] = out.get(line.account.code, D("0")) + line.amount
    return out


def test_booking_services_post_sale_amendment_and_cancellation(carpark, agent):
    booking = book(carpark, agent=agent, price="54.99", commission="8.25")
    assert sums(booking=booking) == {
        chart.BOOKING_RECEIVABLES: D("54.99"),
        chart.PARKING_REVENUE: D("-45.82"),
        chart.OUTPUT_VAT: D("-9.17"),
        chart.COMMISSION_EXPENSE: D("6.87"),
        chart.INPUT_VAT: D("1.38"),
        chart.COMMISSION_PAYABLE: D("-8.25"),
    }
    bookings.booking_amend(booking=booking, price=D("64.99"), commission=D("9.75"))
    assert sums(booking=booking)[chart.PARKING_REVENUE] + sums(booking=booking)[chart.OUTPUT_VAT] == D("-64.99")
    assert sums(booking=booking)[chart.COMMISSION_PAYABLE] == D("-9.75")
    bookings.booking_cancel(booking=booking)
    bookings.booking_cancel(booking=booking)  # repeated: nothing more
    assert set(sums(booking=booking).values()) == {D("0")}
    assert selectors.trial_balance().balanced


def test_closed_period_refuses_the_booking_itself(carpark):
    period_close(month=timezone.localdate(timezone=carpark.tz))
    with pytest.raises(PeriodClosed, match="is closed"):
        book(carpark, plate="CL05ED")
    assert not Booking.objects.filter(vehicles__registration="CL05ED").exists()


def test_exit_after_departure_and_grace_charges_the_overstay_once(carpark):
    from tests.lanes.conftest import make_device

    for code, direction in (("IN", "entry"), ("OUT", "exit")):
        Lane.objects.create(carpark=carpark, code=code, direction=direction)
    CarParkRates.objects.filter(carpark=carpark).update(overstay_rate=D("5.00"), overstay_unit="hour")
    late = book(carpark, plate="OV3R1", arrival=now() - timedelta(days=3), departure=now() - timedelta(hours=3))
    visit = Visit.objects.create(
        carpark=carpark,
        plate="OV3R1",
        lookalike_key=lookalike_key("OV3R1"),
        entered_at=now() - timedelta(days=3),
        booking=late,
    )
    device = make_device(carpark.code, ["IN", "OUT"])
    frame = {
        "device_id": device["device_id"],
        "read_id": "exit-1",
        "lane_code": "OUT",
        "plate": "OV3R1",
        "score": 0.95,
        "captured_at": now(),
    }
    decision = plate_read_decide(**frame)
    plate_read_decide(**frame)  # the controller re-sends the same read: replayed, not charged again
    assert (decision["action"], decision["reason"]) == ("open", "overstay")
    charge = OverstayCharge.objects.get()
    # departure 3 h ago + 60 min grace: 2 h over (a hair more by now) -> 3 started hours at 5.00
    assert charge.visit_id == visit.pk and charge.units == 3 and charge.amount == D("15.00")
    assert selectors.booking_balance(late.pk) == D("95.00")  # 80.00 sold + 15.00 overstay
    assert sums(account__code=chart.OVERSTAY_REVENUE) == {chart.OVERSTAY_REVENUE: D("-12.50")}  # net of 2.50 VAT
    assert sums(transaction__kind="overstay", account__code=chart.OUTPUT_VAT) == {chart.OUTPUT_VAT: D("-2.50")}


@pytest.mark.parametrize("policy", ["open_and_flag", "hold"])
def test_a_stale_exit_after_departure_and_grace_is_charged_as_an_overstay(carpark, policy):
    """A controller offline at the exit let the car out and uploads the read later: applied as if the barrier had
    opened (device-protocol.md 3, rule 2), so the overstay is charged, whatever the policy (the car has gone)."""
    from tests.lanes.conftest import make_device

    for code, direction in (("IN", "entry"), ("OUT", "exit")):
        Lane.objects.create(carpark=carpark, code=code, direction=direction)
    carpark.overstay_policy = policy
    carpark.save()
    CarParkRates.objects.filter(carpark=carpark).update(overstay_rate=D("5.00"), overstay_unit="hour")
    late = book(carpark, plate="OV3R2", arrival=now() - timedelta(days=3), departure=now() - timedelta(hours=3))
    visit = Visit.objects.create(
        carpark=carpark, plate="OV3R2", lookalike_key=lookalike_key("OV3R2"), entered_at=now() - timedelta(days=3),
        booking=late,
    )  # fmt: skip
    device = make_device(carpark.code, ["IN", "OUT"])
    decision = plate_read_decide(
        device_id=device["device_id"], read_id="offline-exit-1", lane_code="OUT", plate="OV3R2", score=0.95,
        captured_at=now() - timedelta(minutes=30), retransmit=True, local_action="open",
    )  # fmt: skip
    assert (decision["action"], decision["reason"]) == ("none", "stale")
    visit.refresh_from_db()
    late.refresh_from_db()
    # departure 3 h ago + 60 min grace, out 30 min ago: 90 min over -> 2 started hours at 5.00
    assert visit.exited_at is not None and visit.overstay_minutes == 90 and late.status == "departed"
    charge = OverstayCharge.objects.get()
    assert charge.visit_id == visit.pk and charge.units == 2 and charge.amount == D("10.00")
    assert visit.exit_read.booking_id == late.pk  # the read is the booking's: explained, and kept past retention


@pytest.mark.parametrize("settled_by", ["visit_close_manual", "barrier_open_manual"])
def test_a_held_overstay_is_charged_when_staff_let_the_car_out(carpark, django_user_model, settled_by):
    """Policy `hold`: the exit denies and keeps the visit open; staff settling it by hand posts the charge once."""
    from tests.lanes.conftest import make_device

    for code, direction in (("IN", "entry"), ("OUT", "exit")):
        Lane.objects.create(carpark=carpark, code=code, direction=direction)
    carpark.overstay_policy = "hold"
    carpark.save()
    CarParkRates.objects.filter(carpark=carpark).update(overstay_rate=D("5.00"), overstay_unit="hour")
    late = book(carpark, plate="H0LD1", arrival=now() - timedelta(days=3), departure=now() - timedelta(hours=3))
    visit = Visit.objects.create(
        carpark=carpark,
        plate="H0LD1",
        lookalike_key=lookalike_key("H0LD1"),
        entered_at=now() - timedelta(days=3),
        booking=late,
    )
    device = make_device(carpark.code, ["IN", "OUT"])
    decision = plate_read_decide(
        device_id=device["device_id"],
        read_id="held-1",
        lane_code="OUT",
        plate="H0LD1",
        score=0.95,
        captured_at=now(),
    )
    assert (decision["action"], decision["reason"]) == ("deny", "overstay")
    assert not OverstayCharge.objects.exists()
    staff = django_user_model.objects.create(username="supervisor")
    if settled_by == "visit_close_manual":
        access.visit_close_manual(visit_id=visit.pk, user=staff, reason="paid at the kiosk")
    else:
        from apps.access.models import Device

        Device.objects.filter(pk=device["device_id"]).update(online=True)
        access.barrier_open_manual(lane_id=Lane.objects.get(code="OUT").pk, user=staff, reason="paid at the kiosk")
    charge = OverstayCharge.objects.get()
    assert charge.visit_id == visit.pk and charge.units == 3 and charge.amount == D("15.00")
    assert selectors.booking_balance(late.pk) == D("95.00")
