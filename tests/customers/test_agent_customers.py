"""Agents' customers get the booking's messages when the booking carries their address (REST API and email
bookings), signed by the car park's brand and pointing them to the agent for changes; an agent whose contract keeps
its customers to itself (message_customers off) has none sent."""

import json
import re
from datetime import timedelta
from decimal import Decimal

from django.test import Client
from django.utils import timezone

from apps.accounting.models import CarParkRates
from apps.agents.models import Agent
from apps.agents.services import api_token_create
from apps.bookings import services as bookings
from apps.carparks.models import CarPark
from apps.customers import messages
from apps.customers.models import CustomerMessage
from apps.payments.models import OverstayPayLink
from tests.customers.conftest import PLATE, agent_email_booking, decide
from tests.lanes.conftest import make_device


def api_booking(agent_code: str, ref: str, email: str) -> tuple[Client, str]:
    client = Client(HTTP_AUTHORIZATION=f"Bearer {api_token_create(agent_code=agent_code)}")
    tz = CarPark.objects.get(code="LHR-T5").tz
    arrival = timezone.localtime(timezone.now() + timedelta(days=5), tz)
    body = {
        "agent_ref": ref, "carpark": "LHR-T5",
        "arrival": f"{arrival:%Y-%m-%dT%H:%M}", "departure": f"{arrival + timedelta(days=3):%Y-%m-%dT%H:%M}",
        "customer": {"name": "Sam Agent", "email": email, "phone": ""},
        "vehicles": [{"registration": "SA12 MAG"}],
    }  # fmt: skip
    created = client.post("/api/v1/bookings", json.dumps(body), content_type="application/json")
    assert created.status_code == 201, created.content
    return client, created.json()["reference"]


def test_an_api_bookings_customer_is_told_of_confirmation_change_and_cancellation(outbound):
    smtp, _ = outbound
    from project.demo import seed_demo

    seed_demo()
    client, ref = api_booking("skypark", "SPX-API-1", "sam@example.com")
    changed = client.patch(
        f"/api/v1/bookings/{ref}", json.dumps({"flights": {"outbound": "BA0117"}}), content_type="application/json"
    )
    assert changed.status_code == 200, changed.content
    assert client.post(f"/api/v1/bookings/{ref}/cancel", "{}", content_type="application/json").status_code == 200

    assert [m["Subject"] for m in smtp.received] == [
        f"Parkgate Demo: booking {ref} confirmed",  # LHR-T5's brand signs for the agent's booking
        f"Parkgate Demo: booking {ref} changed",
        f"Parkgate Demo: booking {ref} cancelled",
    ]
    for message in smtp.received:
        assert message["To"].addresses[0].addr_spec == "sam@example.com"
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        assert "You booked through SkyPark Agents" in text and "SkyPark Agents" in html
        assert "/manage" not in text and "Manage your booking" not in html  # the brand's pages do not hold it


def test_an_email_bookings_customer_gets_the_overstay_pay_link_unless_the_agent_forbids(outbound):
    smtp, sms = outbound
    from project.demo import seed_demo

    seed_demo()
    Agent.objects.filter(code="holidayx").update(message_customers=False)
    carpark = CarPark.objects.get(code="LHR-T5")
    CarParkRates.objects.create(carpark=carpark, overstay_rate=Decimal("4.00"), overstay_unit="hour")
    now = timezone.now().replace(second=0, microsecond=0)
    booking = agent_email_booking(now + timedelta(minutes=30), now + timedelta(days=2))  # skypark, Jane's email
    _, quiet = api_booking("holidayx", "HX-1", "kept@example.com")
    assert not CustomerMessage.objects.filter(booking__reference=quiet).exists()

    device = make_device("LHR-T5", ["N-IN", "N-OUT"])["device_id"]
    assert decide(device, "N-IN", PLATE, "a-1")["action"] == "open"
    type(booking).objects.filter(pk=booking.pk).update(
        arrival=now - timedelta(hours=10), departure=now - timedelta(hours=4)
    )
    assert decide(device, "N-OUT", PLATE, "a-2")["action"] == "open"  # open_and_flag: charged as it leaves
    messages.customer_messages_sweep()

    subjects = [m["Subject"] for m in smtp.received]
    assert subjects[0] == f"Parkgate Demo: booking {booking.reference} confirmed"
    assert f"Parkgate Demo: please pay for your extra time ({booking.reference})" in subjects
    overstay = smtp.received[subjects.index(f"Parkgate Demo: please pay for your extra time ({booking.reference})")]
    link = OverstayPayLink.objects.get(booking=booking)
    text = overstay.get_body(("plain",)).get_content()
    assert f"http://localhost:8000/pay/{link.token}" in text, text  # absolute, on the car park's brand
    assert Client().get(re.search(r"http://localhost:8000(/pay/\S+)", text)[1]).status_code == 200
    assert any(link.token in t["text"] for t in sms.received)  # and by text, to the agent's customer's mobile
    assert all("kept@example.com" not in m["To"] for m in smtp.received)
    bookings.booking_cancel(booking=type(booking).objects.get(reference=quiet))
    assert not CustomerMessage.objects.filter(booking__reference=quiet).exists()
