"""Webhook writes: events into the outbox (in the caller's transaction), endpoints, rotation, tests and replays.

Sending is apps.webhooks.dispatch's; everything here commits in the caller's or its own short transaction and never
waits on an endpoint.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.bookings.models import Booking
from apps.bookings.selectors import booking_as_dict
from apps.core.jobs import enqueue
from apps.webhooks import addresses, signing
from apps.webhooks.models import EVENT_TYPES, TEST_EVENT, Delivery, Endpoint, Event


class EndpointInvalid(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def booking_data(booking_id: int) -> dict | None:
    """The booking as the agents' API shows it (the payload's `data`), or None if it is gone."""
    booking = (
        Booking.objects.select_related("carpark", "customer").prefetch_related("vehicles").filter(pk=booking_id).first()
    )
    return None if booking is None else booking_as_dict(booking)


def event_record(
    *, event_type: str, booking: Booking | None = None, agent_id: int | None = None, data: dict | None = None
) -> Event | None:
    """Put an event in the outbox, in the caller's transaction (so it exists exactly when the change commits), if
    an active endpoint may want it: the agent's own or the operator's. Its row's insert wakes the dispatchers
    (NOTIFY, see the migration)."""
    if booking is not None:
        agent_id = booking.agent_id
    wanted = Endpoint.objects.filter(Q(agent__isnull=True) | Q(agent_id=agent_id), active=True)
    if not wanted.filter(events__contains=[event_type]).exists():
        return None
    if booking is not None and data is None:
        data = booking_data(booking.pk)
    return Event.objects.create(type=event_type, booking=booking, agent_id=agent_id, data=data)


def _clean(url: str, events: list[str]) -> tuple[str, list[str]]:
    url = (url or "").strip()
    if len(url) > 500:
        raise EndpointInvalid("url", "the URL is longer than 500 characters")
    try:
        addresses.check_url(url)
    except addresses.AddressRefused as exc:
        raise EndpointInvalid("url", str(exc)) from None
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if unknown or not events:
        allowed = ", ".join(EVENT_TYPES)
        raise EndpointInvalid("events", f"unknown events {unknown}; allowed: {allowed}" if unknown else "no events")
    return url, [t for t in EVENT_TYPES if t in events]


def endpoint_create(*, url: str, events: list[str], agent_id: int | None, notify_email: str = "") -> Endpoint:
    """A new endpoint with a fresh secret (the caller shows it once). `agent_id` None: the operator's."""
    url, events = _clean(url, events)
    return Endpoint.objects.create(
        agent_id=agent_id, url=url, events=events, secret=signing.new_secret(), notify_email=notify_email
    )


def endpoint_delete(*, endpoint: Endpoint) -> None:
    endpoint.delete()


def endpoint_rotate_secret(*, endpoint_id: int) -> Endpoint:
    """A new secret; the old one still signs deliveries (a second signature) for WEBHOOKS_ROTATION_GRACE_S, so the
    receiver can switch over without losing any."""
    with transaction.atomic():
        endpoint = Endpoint.objects.select_for_update().get(pk=endpoint_id)
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_until = timezone.now() + timedelta(seconds=settings.WEBHOOKS_ROTATION_GRACE_S)
        endpoint.secret = signing.new_secret()
        endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_until"])
    return endpoint


def endpoint_enable(*, endpoint_id: int) -> None:
    """Staff (or the agent) turn a disabled endpoint back on; what was given up on stays given up (replay it)."""
    Endpoint.objects.filter(pk=endpoint_id).update(active=True, disabled_at=None, disabled_reason="")


SAMPLE_BOOKING = {
    "reference": "PG-TEST00",
    "agent_ref": "TEST-1",
    "carpark": "TEST",
    "status": "confirmed",
    "arrival": "2030-01-01T08:00:00Z",
    "departure": "2030-01-05T18:00:00Z",
    "customer": {"name": "Test Customer", "email": "", "phone": ""},
    "vehicles": [{"registration": "TE57ABC", "make": "", "model": "", "colour": ""}],
    "flights": {"outbound": "", "return": ""},
    "price": "0.00",
    "currency": "GBP",
    "overbooked": False,
    "created_at": "2030-01-01T00:00:00Z",
    "updated_at": "2030-01-01T00:00:00Z",
}


def endpoint_send_test(*, endpoint: Endpoint) -> Delivery:
    """A `webhook.test` event with a sample booking, to this endpoint only (delivered like any other)."""
    with transaction.atomic():
        event = Event.objects.create(type=TEST_EVENT, agent_id=endpoint.agent_id, data=SAMPLE_BOOKING, fanned_out=True)
        delivery = Delivery.objects.create(endpoint=endpoint, event=event)
        enqueue("webhooks.drain", endpoint_id=endpoint.pk)
    return delivery


def delivery_replay(*, delivery_id: int) -> Delivery:
    """Send a delivery's event to its endpoint again (a new delivery with the same `webhook-id`, so a receiver that
    keeps ids sees the repeat), whatever became of the first."""
    with transaction.atomic():
        original = Delivery.objects.select_related("endpoint").get(pk=delivery_id)
        replay = Delivery.objects.create(
            endpoint=original.endpoint, event_id=original.event_id, booking_id=original.booking_id
        )
        enqueue("webhooks.drain", endpoint_id=original.endpoint_id)
    return replay
