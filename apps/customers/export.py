"""The subject access export: everything held about one person, as one JSON-ready document."""

from django.db import transaction
from django.utils import timezone

from apps.accounting.models import Payment
from apps.core.services import audit_log_record
from apps.customers.models import CustomerMessage
from apps.customers.subjects import Subject, find_subject

FORMAT = "parkgate.subject-access/1"


def customer_export(*, email: str = "", plate: str = "", name: str = "", actor=None, actor_label: str = "") -> dict:
    """The export document for the person behind `email`, `plate` or `name`; audited (who, when, how many rows;
    never what was exported). Raises subjects.Nobody when nothing is held about them."""
    with transaction.atomic():
        subject = find_subject(email=email, plate=plate, name=name)
        document = subject_document(subject)
        document["query"] = {subject.matched_by: email or plate or name}
        audit_log_record(
            action="customer.export",
            actor=actor,
            actor_label=actor_label,
            data={
                "matched_by": subject.matched_by,
                "counts": {k: len(v) for k, v in document.items() if isinstance(v, list)},
            },
        )
    return document


def subject_document(subject: Subject) -> dict:
    bookings = subject.bookings().select_related("carpark", "brand", "agent", "customer").prefetch_related("vehicles")
    return {
        "format": FORMAT,
        "generated_at": timezone.now(),
        "people": list(subject.customers().order_by("pk").values("name", "email", "phone")),
        "bookings": [_booking(b) for b in bookings.order_by("arrival", "pk")],
        "history": list(
            subject.history().order_by("at", "pk").values("booking__reference", "at", "action", "actor", "changes")
        ),
        "payments": list(
            Payment.objects.filter(booking_id__in=subject.booking_ids)
            .order_by("received_at", "pk")
            .values("booking__reference", "kind", "method", "amount", "currency", "received_at")
        ),
        "messages": list(
            CustomerMessage.objects.filter(booking_id__in=subject.booking_ids)
            .order_by("created_at", "pk")
            .values("booking__reference", "kind", "channel", "recipient", "subject", "status", "sent_at")
        ),
        "bouncing_addresses": list(subject.bouncing().order_by("at").values("email", "event", "detail", "at")),
        "plate_reads": list(
            subject.reads()
            .order_by("captured_at", "pk")
            .values(
                "carpark__code",
                "lane__code",
                "plate_raw",
                "plate",
                "score",
                "captured_at",
                "action",
                "reason",
                "booking__reference",
                "vehicle",
                "region",
            )
        ),
        "visits": list(
            subject.visits()
            .order_by("entered_at", "pk")
            .values("carpark__code", "plate", "entered_at", "exited_at", "booking__reference", "overstay_minutes")
        ),
        "alerts": list(
            subject.alerts()
            .order_by("created_at", "pk")
            .values("carpark__code", "plate", "reason", "detail", "created_at")
        ),
        "emails": [_email(e) for e in subject.emails_naming().select_related("agent").order_by("received_at", "pk")],
        "audit": list(
            subject.audit_entries().order_by("at", "pk").values("at", "action", "actor_label", "object_type", "data")
        ),
    }


def _booking(b) -> dict:
    return {
        "reference": b.reference,
        "carpark": b.carpark.code,
        "brand": b.brand.name if b.brand else None,
        "agent": b.agent.name if b.agent else None,
        "agent_reference": b.agent_ref,
        "status": b.status,
        "source": b.source,
        "arrival": b.arrival,
        "departure": b.departure,
        "price": b.price,
        "currency": b.currency,
        "flight_outbound": b.flight_outbound,
        "flight_return": b.flight_return,
        "created_at": b.created_at,
        "customer": {"name": b.customer.name, "email": b.customer.email, "phone": b.customer.phone},
        "vehicles": [
            {"registration": v.registration_raw, "make": v.make, "model": v.model, "colour": v.colour}
            for v in b.vehicles.all()
        ],
    }


def _email(e) -> dict:
    return {
        "received_at": e.received_at,
        "agent": e.agent.name if e.agent else None,
        "subject": e.subject,
        "status": e.status,
        "result": e.result,
        "raw": bytes(e.raw).decode("utf-8", "replace") if e.raw is not None else None,
    }
