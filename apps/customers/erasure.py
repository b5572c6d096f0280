"""Erasure: a person's name, email, phone and plates replaced wherever we hold them, amounts, dates and the ledger
kept (the books must still add up, and a booking's money must still be explained). A record of the erasure says
when, why, by whom and how many rows, never whose."""

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from apps.access.models import PlateRead
from apps.accounting.selectors import booking_balance
from apps.bookings.models import Booking
from apps.customers import scrub
from apps.customers.models import CustomerMessage, Erasure
from apps.customers.subjects import ERASED_NAME, ERASED_PLATE, Subject, find_subject
from apps.ground.models import ConditionPhoto


class ErasureRefused(Exception):
    """Erasing now would lose something the business still needs; the message says what."""


def customer_erase(*, email: str = "", plate: str = "", reason: str, actor=None, actor_label: str = "") -> Erasure:
    """Erase the person behind `email` or `plate` (subjects.find_subject). Raises subjects.Nobody when nobody
    matches, ErasureRefused (nothing changed) when a car is on site, money is owed either way, or a booking is
    still to come."""
    if not reason.strip():
        raise ValueError("a reason is required")
    if not (email or plate):
        raise ValueError("give an email address or a plate")  # a name alone is too weak to erase by
    with transaction.atomic():
        subject = find_subject(email=email, plate=plate)
        Booking.objects.select_for_update(of=("self",)).filter(pk__in=subject.booking_ids).exists()
        problems = refusals(subject)
        if problems:
            raise ErasureRefused("; ".join(problems))
        return _erase(subject, reason=reason, trigger=Erasure.Trigger.REQUEST, actor=actor, actor_label=actor_label)


def refusals(subject: Subject, *, now: datetime | None = None) -> list[str]:
    """Why this person may not be erased yet (empty: they may)."""
    now = now or timezone.now()
    problems = []
    if subject.visits().filter(exited_at__isnull=True).exists():
        problems.append("a vehicle of theirs is on site (open visit): close it first")
    for booking in subject.bookings().order_by("reference"):
        balance = booking_balance(booking.pk)
        if balance > 0:
            problems.append(f"booking {booking.reference} has an unpaid balance of {balance} {booking.currency}")
        elif balance < 0:
            problems.append(f"booking {booking.reference} is owed a refund of {-balance} {booking.currency}")
        if booking.status == Booking.Status.CONFIRMED and booking.departure > now:
            problems.append(f"booking {booking.reference} is still to come: cancel it first")
    return problems


def _erase(subject: Subject, *, reason: str, trigger: str, actor=None, actor_label: str = "") -> Erasure:
    """Replace the subject's personal data (in the caller's transaction) and record the erasure."""
    found = subject.pattern()
    now = timezone.now()
    # The rows found by text (emails, audit, alerts, API replays) first: they are found by the data replaced next.
    emails = list(subject.emails_naming())
    audit = list(subject.audit_entries())
    alerts = list(subject.alerts())
    replays = list(subject.idempotency_responses())
    counts = {
        "bookings.Customer": subject.customers().update(name=ERASED_NAME, email="", phone=""),
        "bookings.Vehicle": subject.vehicles().update(
            registration_raw=ERASED_PLATE,
            registration=ERASED_PLATE,
            lookalike_key=ERASED_PLATE,
            make="",
            model="",
            colour="",
        ),
        "bookings.BookingChange": _scrub_rows(subject.history(), found, "changes", "snapshot"),
        "bookings.Booking": _scrub_rows(subject.bookings().exclude(review_note=""), found, "review_note"),
        "access.PlateRead": _erase_reads(subject, found),
        "access.Visit": subject.visits().update(plate=ERASED_PLATE, lookalike_key=ERASED_PLATE),
        "access.Alert": _scrub_objects(alerts, found, "plate", "detail"),
        "mail.InboundEmail": _erase_emails(emails, found, now),
        "core.AuditLog": _scrub_objects(audit, found, "data"),
        "bookings.ApiIdempotencyKey": _scrub_objects(replays, found, "response"),
        "customers.CustomerMessage": CustomerMessage.objects.filter(booking_id__in=subject.booking_ids).update(
            recipient=""
        )
        + _scrub_rows(CustomerMessage.objects.filter(booking_id__in=subject.booking_ids), found, "last_error"),
        "customers.BouncingAddress": subject.bouncing().delete()[0],
        "ground.ConditionPhoto": _delete_photos(subject.booking_ids),
    }
    return Erasure.objects.create(
        trigger=trigger,
        matched_by=subject.matched_by,
        reason=scrub.scrub(reason.strip(), found),  # staff may have named the person in the reason
        actor=actor,
        actor_label=actor_label or (actor.get_username() if actor else ""),
        booking_ids=sorted(subject.booking_ids),
        counts={table: n for table, n in counts.items() if n},
    )


def _delete_photos(booking_ids) -> int:
    """Photos of their cars are personal data kept no longer than the booking's: deleted one by one, so each
    file goes with its row (apps.ground.receivers)."""
    photos = list(ConditionPhoto.objects.filter(task__booking_id__in=booking_ids))
    for photo in photos:
        photo.delete()
    return len(photos)


def _erase_reads(subject: Subject, found) -> int:
    reads = list(subject.reads().only("pk", "decision"))
    for read in reads:
        read.plate_raw = read.plate = read.lookalike_key = ERASED_PLATE
        read.candidates, read.vehicle, read.decision = [], {}, scrub.scrub(read.decision, found)
    fields = ["plate_raw", "plate", "lookalike_key", "candidates", "vehicle", "decision"]
    PlateRead.objects.bulk_update(reads, fields, batch_size=500)
    return len(reads)


def _erase_emails(emails: list, found, now: datetime) -> int:
    for email in emails:
        email.raw, email.raw_deleted_at = None, email.raw_deleted_at or now
        email.subject = scrub.scrub(email.subject, found)
        email.result, email.error = scrub.scrub(email.result, found), scrub.scrub(email.error, found)
        email.save(update_fields=["raw", "raw_deleted_at", "subject", "result", "error"])
    return len(emails)


def _scrub_rows(queryset, found, *fields: str) -> int:
    return _scrub_objects(list(queryset), found, *fields)


def _scrub_objects(objects: list, found, *fields: str) -> int:
    changed = 0
    for obj in objects:
        before = [getattr(obj, f) for f in fields]
        for f in fields:
            setattr(obj, f, scrub.scrub(getattr(obj, f), found))
        if [getattr(obj, f) for f in fields] != before:
            type(obj).objects.filter(pk=obj.pk).update(**{f: getattr(obj, f) for f in fields})
            changed += 1
    return changed
