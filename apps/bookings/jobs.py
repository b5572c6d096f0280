"""Bookings' background jobs: the customer's confirmation email and the idempotency keys' clean-up."""

from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from apps.bookings.models import ApiIdempotencyKey, Booking
from apps.carparks.models import Brand, CarPark
from apps.core.jobs import job, periodic

IDEMPOTENCY_TTL = timedelta(hours=24)


@job("bookings.send_confirmation")
def send_confirmation(*, booking_id: int) -> None:
    """Email a website booking's confirmation once. The row lock makes a second run (arq retries) a no-op."""
    with transaction.atomic():
        booking = (
            Booking.objects.select_for_update(of=("self",))
            .select_related("carpark", "customer", "brand")
            .prefetch_related("vehicles")
            .filter(pk=booking_id, confirmation_sent_at__isnull=True)
            .first()
        )
        if booking is None or not booking.customer.email:
            return
        context = {
            "booking": booking,
            "links": _site_links(booking.brand, booking.carpark) if booking.brand else {},
        }
        brand_name = booking.brand.name if booking.brand else "Parkgate"
        with timezone.override(booking.carpark.tz):  # times in the car park's local time (carpark_time filter)
            message = render_to_string("email/confirmation.txt", context)
        send_mail(
            subject=f"{brand_name}: booking {booking.reference} confirmed",
            message=message,
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[booking.customer.email],
        )
        booking.confirmation_sent_at = timezone.now()
        booking.save(update_fields=["confirmation_sent_at"])


def _site_links(brand: Brand, carpark: CarPark) -> dict:
    """The brand's pages an email links to, absolute on its base URL (the job has no request to take a host from)."""
    return {
        "manage": brand.link(reverse("site-manage")),
        "carpark": brand.link(reverse("site-carpark", args=[carpark.code])),
        "policies": [(p.title, brand.link(reverse(f"site-{p.slug}"))) for p in brand.policies()],
    }


@periodic("bookings.expire_idempotency_keys", minute={7})
def expire_idempotency_keys() -> None:
    """Idempotency keys are kept 24 h (docs/operations.md 5); older ones are deleted hourly."""
    ApiIdempotencyKey.objects.filter(created_at__lt=timezone.now() - IDEMPOTENCY_TTL).delete()


@periodic("bookings.expire_unpaid", minute=set(range(60)))
def expire_unpaid() -> None:
    """Website bookings unpaid after their car park's payment window expire and free their spaces (every minute)."""
    from apps.bookings.prepaid import booking_expire, bookings_due_to_expire

    for booking_id in bookings_due_to_expire():
        booking_expire(booking_id=booking_id)


@periodic("bookings.flight_statuses_expire", minute={17})
def flight_statuses_expire() -> None:
    """Forget flight statuses FLIGHT_STATUS_KEEP_DAYS after their date (docs/flight-status.md)."""
    from apps.bookings.flights import flight_statuses_expire as expire

    expire()
