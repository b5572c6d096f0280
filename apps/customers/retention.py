"""Retention: personal data kept no longer than each car park says (CarPark.*_retention_*), enforced daily by one
job that reports what it did (an audit entry `retention.run` with the counts, and the log).

- reads of vehicles with no booking or permit: deleted after `read_retention_days` (apps.access), and the plates
  of such vehicles' visits and alerts replaced;
- a booking's personal data: erased `booking_retention_months` after departure (as an erasure on request, but of
  that booking only; one with a car on site or money owed is kept, and reported);
- agents' raw emails: deleted after RAW_EMAIL_RETENTION_DAYS (apps.mail);
- messages sent: deleted after `message_retention_days`.
"""

import calendar
import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from apps.access import cameras
from apps.access import services as access
from apps.access.models import Alert, Visit
from apps.bookings.models import Booking
from apps.carparks.models import CarPark
from apps.core.services import audit_log_record
from apps.customers.erasure import _erase, refusals
from apps.customers.models import CustomerMessage, Erasure
from apps.customers.subjects import ERASED_NAME, ERASED_PLATE, booking_subject
from apps.mail import services as mail

log = logging.getLogger(__name__)


def retention_enforce(*, now: datetime | None = None) -> dict:
    """Apply every car park's retention; returns (and audits) the counts, and the bookings kept and why."""
    now = now or timezone.now()
    report = {
        "unknown_reads_deleted": access.reads_purge(now=now) + cameras.unmapped_reads_purge(now=now),
        "unknown_visits_erased": 0,
        "unknown_alerts_erased": 0,
        "raw_emails_deleted": mail.inbound_email_purge_raw(now=now),
        "bookings_erased": 0,
        "bookings_kept": [],
        "messages_deleted": 0,
    }
    for carpark in CarPark.objects.order_by("code"):
        unknown_cutoff = now - timedelta(days=carpark.read_retention_days)
        report["unknown_visits_erased"] += (
            Visit.objects.filter(
                carpark=carpark, booking__isnull=True, permit__isnull=True, exited_at__lt=unknown_cutoff
            )
            .exclude(plate=ERASED_PLATE)
            .update(plate=ERASED_PLATE, lookalike_key=ERASED_PLATE)
        )
        report["unknown_alerts_erased"] += (
            Alert.objects.filter(carpark=carpark, created_at__lt=unknown_cutoff, read__booking__isnull=True)
            .exclude(plate="")
            .update(plate="")
        )
        report["messages_deleted"] += CustomerMessage.objects.filter(
            booking__carpark=carpark, created_at__lt=now - timedelta(days=carpark.message_retention_days)
        ).delete()[0]
        due = Booking.objects.filter(
            carpark=carpark, departure__lt=months_before(now, carpark.booking_retention_months)
        ).exclude(customer__name=ERASED_NAME)
        for booking_id, reference in due.values_list("pk", "reference"):
            kept = _erase_booking(booking_id, carpark, now)
            if kept:
                report["bookings_kept"].append({"booking": reference, "why": kept})
            else:
                report["bookings_erased"] += 1
    audit_log_record(action="retention.run", actor_label="retention job", data=report)
    log.info("retention: %s", report)
    return report


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months earlier (the month's last day when it is shorter)."""
    month_index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(month_index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def _erase_booking(booking_id: int, carpark: CarPark, now: datetime) -> str:
    """Erase one booking's personal data; returns why it was kept instead ("" when erased)."""
    with transaction.atomic():
        Booking.objects.select_for_update(of=("self",)).filter(pk=booking_id).exists()
        subject = booking_subject(booking_id)
        problems = refusals(subject, now=now)
        if problems:
            return "; ".join(problems)
        reason = f"retention: {carpark.booking_retention_months} months after departure at {carpark.code}"
        _erase(subject, reason=reason, trigger=Erasure.Trigger.RETENTION, actor_label="retention job")
    return ""
