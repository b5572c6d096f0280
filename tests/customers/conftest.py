"""A customer's data spread the way real use spreads it: an agent's email, the website, lane reads, a payment."""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.agents.models import Agent
from apps.bookings import services as bookings
from apps.bookings.models import Booking
from apps.carparks.models import Brand, CarPark
from tests.customers.sinks import SmsProvider, SmtpSink
from tests.lanes.conftest import make_device
from tests.mail.conftest import deliver
from tests.mail.messages import LABELS, message

NAME, EMAIL, PHONE, PLATE = "Jane Smith", "jane.smith@example.com", "07700 900123", "AB12 CDE"
WEB_PLATE = "JS05 WEB"


@dataclass
class Person:
    agent_booking: Booking
    web_booking: Booking
    device_id: str
    carpark: CarPark
    brand: Brand


@pytest.fixture
def outbound(settings, transactional_db):
    """Mail through Django's SMTP backend to a local SMTP server, texts to a local provider; jobs run in-process."""
    smtp, sms = SmtpSink().start(), SmsProvider()
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": smtp.port},
        }
    }
    settings.PARKGATE_JOBS_BACKEND = "inprocess"  # no server loop here: a job runs right after the commit
    settings.SMS_BACKEND, settings.SMS_HTTP_URL, settings.SMS_HTTP_TOKEN = "http", sms.url, "sms-token"
    yield smtp, sms
    smtp.stop()
    sms.stop()


@pytest.fixture
def world(db):
    from project.demo import seed_demo

    seed_demo()


def _local(at) -> tuple[str, str]:
    local = timezone.localtime(at, timezone=CarPark.objects.get(code="LHR-T5").tz)
    return local.strftime("%d/%m/%Y"), local.strftime("%H:%M")


def agent_email_booking(arrival, departure, *, ref="SPX-777") -> Booking:
    """Jane's booking as the agent `skypark` emails it (labels format), processed as the job does."""
    text = LABELS.format(status="New", ref=ref, carpark="LHR-T5", plate=PLATE, price="£54.99")
    for old, new in zip(
        ("21/11/2026", "05:30", "28/11/2026", "22:15"), (*_local(arrival), *_local(departure)), strict=True
    ):
        text = text.replace(old, new)
    email = deliver(Agent.objects.get(code="skypark"), message(text, subject=f"New booking {ref} for Jane Smith"))
    assert email.status == "processed", email.error or email.result
    return Booking.objects.get(agent__code="skypark", agent_ref=ref)


def web_booking(
    brand: Brand, *, name=NAME, email="Jane.Smith@Example.com", phone=PHONE, plate=WEB_PLATE, days=10
) -> Booking:
    arrival = timezone.now().replace(second=0, microsecond=0) + timedelta(days=days)
    return bookings.booking_create(
        carpark=CarPark.objects.get(code="LHR-T5"),
        arrival=arrival,
        departure=arrival + timedelta(days=3),
        customer_name=name,
        customer_email=email,
        customer_phone=phone,
        vehicles=[{"registration": plate, "make": "Mini", "colour": "Red"}],
        source="web",
        brand=brand,
    )


@pytest.fixture
def person(world) -> Person:
    now = timezone.now().replace(second=0, microsecond=0)
    agent_booking = agent_email_booking(now + timedelta(minutes=30), now + timedelta(days=2))
    brand = Brand.objects.get(code="parkgate-demo")
    web = web_booking(brand)
    device = make_device("LHR-T5", ["N-IN", "N-OUT"])
    return Person(agent_booking, web, device["device_id"], CarPark.objects.get(code="LHR-T5"), brand)


def decide(device_id: str, lane: str, plate: str, read_id: str) -> dict:
    from apps.access.decision import plate_read_decide

    return plate_read_decide(
        device_id=device_id, read_id=read_id, lane_code=lane, plate=plate, score=0.95, captured_at=timezone.now()
    )


ZERO = Decimal("0")
