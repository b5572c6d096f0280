"""Retention (issue 32): one daily job erases what each car park may no longer keep and reports it; the brands'
privacy pages state the periods from the same settings."""

from datetime import timedelta

from django.test import Client
from django.utils import timezone

from apps.access.models import PlateRead, Visit
from apps.accounting import selectors as accounting
from apps.accounting import services as payments
from apps.bookings.models import Booking, Customer
from apps.carparks.models import CarPark
from apps.core.jobs import registered_jobs, registered_periodic
from apps.core.models import AuditLog
from apps.customers import retention
from apps.customers.models import CustomerMessage, Erasure
from apps.mail.models import InboundEmail
from tests.customers.conftest import EMAIL, PLATE, decide


def test_retention_erases_old_bookings_unknown_plates_raw_emails_and_messages(person):
    carpark, old, newer = person.carpark, person.agent_booking, person.web_booking
    assert decide(person.device_id, "N-IN", PLATE, "r-1")["action"] == "open"
    assert decide(person.device_id, "N-OUT", PLATE, "r-2")["action"] == "open"
    assert decide(person.device_id, "N-IN", "UNKN 0WN", "r-3")["reason"]  # a vehicle with no booking
    # its confirmation (recorded by the booking, delivered after commit: here, by hand)
    CustomerMessage.objects.filter(booking=newer, event="confirmed").update(recipient=EMAIL, status="sent")
    CarPark.objects.filter(pk=carpark.pk).update(booking_retention_months=2, message_retention_days=30)

    # Nothing is due yet: the report says so.
    assert retention.retention_enforce()["bookings_erased"] == 0

    # 100 days on: the unknown car's read (90 days) and Jane's raw email (90 days) go; the departed booking is over
    # 2 months past its departure and is erased; the message (30 days) is deleted. Her future booking stays whole.
    later = timezone.now() + timedelta(days=100)
    Booking.objects.filter(pk=newer.pk).update(departure=later + timedelta(days=5))
    report = retention.retention_enforce(now=later)
    assert report["unknown_reads_deleted"] == 1 and report["raw_emails_deleted"] == 1, report
    # both confirmations: the website's and the agent's (skypark lets its customers be written to)
    assert report["messages_deleted"] == 2 and report["bookings_erased"] == 0, report
    assert report["bookings_kept"] == [
        {"booking": old.reference, "why": f"booking {old.reference} has an unpaid balance of 54.99 GBP"}
    ]
    payments.payment_record(booking_id=old.pk, amount=accounting.booking_balance(old.pk), method="bank_transfer")
    report = retention.retention_enforce(now=later)
    assert report["bookings_erased"] == 1 and report["bookings_kept"] == [], report
    assert Customer.objects.get(pk=old.customer_id).name == "Erased"
    assert not PlateRead.objects.filter(plate="AB12CDE").exists() and Visit.objects.get().plate == "ERASED"
    assert Customer.objects.get(pk=newer.customer_id).email.lower() == EMAIL
    assert newer.vehicles.get().registration == "JS05WEB"
    assert Erasure.objects.get().trigger == "retention" and not InboundEmail.objects.filter(raw__isnull=False)
    assert AuditLog.objects.filter(action="retention.run").latest("at").data == report | {"bookings_kept": []}
    # Run again: nothing more to do.
    assert retention.retention_enforce(now=later)["bookings_erased"] == 0


def test_one_scheduled_job_runs_retention():
    names = [p.name for p in registered_periodic()]
    assert "customers.retention" in names and "customers.retention" in registered_jobs()
    assert "access.reads_purge" not in names and "mail.purge_raw" not in names


def test_the_privacy_page_states_each_car_parks_periods(demo_world):  # committed: async views read on a thread
    CarPark.objects.filter(code="LHR-T5").update(booking_retention_months=18, message_retention_days=200)
    page = Client(HTTP_HOST="skyline.parkgate.test").get("/privacy/")
    assert page.status_code == 200
    text = " ".join(page.content.decode().split())
    assert "How long we keep your data" in text
    assert "<td>Heathrow Terminal 5</td> <td>18 months after departure</td> <td>200 days</td> <td>90 days</td>" in text
    assert "as received: 90 days" in text
