"""Customers' reads for staff pages: who a search finds, in brief."""

from apps.customers.subjects import Nobody, find_subject


def subject_summary(*, email: str = "", plate: str = "", name: str = "") -> dict | None:
    """What a search finds (None: nobody): their bookings in brief and how many reads, visits and emails."""
    try:
        subject = find_subject(email=email, plate=plate, name=name)
    except Nobody:
        return None
    bookings = subject.bookings().select_related("carpark", "customer").order_by("arrival")
    return {
        "bookings": [
            {
                "reference": b.reference,
                "carpark": b.carpark.code,
                "name": b.customer.name,
                "email": b.customer.email,
                "arrival": b.arrival,
                "status": b.status,
            }
            for b in bookings
        ],
        "reads": subject.reads().count(),
        "visits": subject.visits().count(),
        "emails": subject.emails_naming().count(),
        # staff see why messages stop reaching them (the provider's bounces; the admin lifts it)
        "bouncing": list(subject.bouncing().values("email", "event", "detail", "at")),
        "erasable_by": {"email": sorted(subject.emails)[:1], "plate": sorted(subject.plates)[:1]},
    }
