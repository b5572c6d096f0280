"""Overstays paid by card (demo provider, the same services): under `hold` the exit read's alert names a pay link,
the lane's display (display token only) shows its QR code, and once paid the server opens the barrier (reason
`paid`) and the visit closes, the ledger settled; under `open_and_flag` a pay link is made (the customer's overstay
message carries it)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client

from apps.access.models import Alert, BarrierCommand, Device, Visit
from apps.accounting import selectors as ledger
from apps.accounting.models import CarParkRates
from apps.core.plates import lookalike_key
from apps.payments import overstay, services
from apps.payments.models import OverstayPayLink
from tests.lanes.conftest import build_world, make_booking, make_device, now
from tests.lanes.test_services import decide

pytestmark = pytest.mark.django_db(transaction=True)


def overstaying(carpark, plate: str):
    booking = make_booking(carpark, plate, arrival=now() - timedelta(days=3), departure=now() - timedelta(hours=3))
    booking.customer.email = "late@example.com"
    booking.customer.save()
    Visit.objects.create(carpark=carpark, plate=plate, lookalike_key=lookalike_key(plate),
                         entered_at=now() - timedelta(days=3), booking=booking)  # fmt: skip
    return booking


def test_a_held_overstay_is_paid_from_the_lane_display_and_the_barrier_opens(settings):
    settings.PARKGATE_JOBS_BACKEND = "inprocess"
    carpark = build_world()["one"]
    carpark.overstay_policy = "hold"
    carpark.save()
    CarParkRates.objects.create(carpark=carpark, overstay_rate=Decimal("5.00"), overstay_unit="hour")
    device = make_device("TST1", ["IN", "OUT"])["device_id"]
    booking = overstaying(carpark, "H0LD1")
    held = decide(device, "OUT", "H0LD1")
    assert (held["action"], held["reason"]) == ("deny", "overstay")
    link = OverstayPayLink.objects.get(booking=booking)
    assert link.amount == Decimal("15.00")  # 3 h late (and a moment), 1 h grace: 3 started hours at 5.00
    alert = Alert.objects.get(reason="overstay", plate="H0LD1")
    assert alert.detail.endswith(f"/pay/{link.token}")

    lane, token = overstay.lane_display_issue(carpark_code="TST1", lane_code="OUT")
    client = Client()
    assert client.get(f"/lanes/{lane.pk}/display").status_code == 403
    assert client.get(f"/lanes/{lane.pk}/display?token=not-it").status_code == 403
    screen = client.get(f"/lanes/{lane.pk}/display?token={token}")
    assert screen.status_code == 200 and "<svg" in screen.text and f"/pay/{link.token}" in screen.text
    page = client.get(f"/pay/{link.token}")
    assert page.status_code == 200 and "15.00" in page.text and "no card is charged" in page.text

    Device.objects.filter(pk=device).update(online=True)
    payment = OverstayPayLink.objects.get(pk=link.pk).payment
    services.payment_card_confirm(payment_id=payment.pk, card_token="demo-card")
    command = BarrierCommand.objects.get(lane=lane, reason__startswith="paid")
    assert command.action == "open" and str(command.device_id) == str(device)
    visit = Visit.objects.get(booking=booking)
    assert visit.exited_at is not None and visit.held_at is None and visit.closed_reason == "overstay paid at the exit"
    assert ledger.booking_balance(booking.pk) == 0  # the overstay charged as it presented, and paid by card
    after = client.get(f"/lanes/{lane.pk}/display?token={token}")
    assert "Have a safe journey" in after.text and "paid" in client.get(f"/pay/{link.token}").text.lower()


def test_an_overstay_flagged_at_the_exit_gets_a_pay_link(settings):
    settings.PARKGATE_JOBS_BACKEND = "inprocess"
    carpark = build_world()["one"]
    CarParkRates.objects.create(carpark=carpark, overstay_rate=Decimal("5.00"), overstay_unit="hour")
    device = make_device("TST1", ["IN", "OUT"])["device_id"]
    booking = overstaying(carpark, "FL4G1")
    assert decide(device, "OUT", "FL4G1")["action"] == "open"
    link = OverstayPayLink.objects.get(booking=booking)  # the customer's overstay message carries it (customers)
    assert (link.amount, link.currency) == (Decimal("15.00"), "GBP") and len(link.token) >= 32
