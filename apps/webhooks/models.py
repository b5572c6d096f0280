"""Outbound webhooks: agents' (and the operator's) endpoints, the outbox of events, deliveries and their attempts.

The outbox (`Event`) is written in the transaction that changed the booking, so an event exists exactly when its
change committed; deliveries are made from it afterwards (apps.webhooks.dispatch). docs/webhooks.md has the design.
"""

from django.db import models
from django.utils import timezone

EVENT_TYPES = (
    "booking.created",
    "booking.amended",
    "booking.cancelled",
    "booking.arrived",
    "booking.departed",
    "booking.no_show",
    "allocation.stop_sell",
)
TEST_EVENT = "webhook.test"  # sent by "send a test event" to one endpoint, whatever it subscribes to


class Endpoint(models.Model):
    """Where an agent (or, without one, the operator) wants events: every event of its own bookings (the operator's:
    of all bookings) whose type it subscribes to."""

    agent = models.ForeignKey(
        "agents.Agent",
        null=True,
        blank=True,
        related_name="webhook_endpoints",
        on_delete=models.CASCADE,
        help_text="Empty: the operator's own endpoint, sent every booking's events",
    )
    url = models.URLField(max_length=500)
    events = models.JSONField(default=list, help_text=f"A list of event types: {', '.join(EVENT_TYPES)}")
    secret = models.CharField(max_length=100, help_text="whsec_ + base64; shown once")
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_secret_until = models.DateTimeField(
        null=True, blank=True, help_text="After a rotation, deliveries are signed with both secrets until then"
    )
    active = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=200, blank=True)
    notify_email = models.EmailField(blank=True, help_text="Told when the endpoint is disabled (default: the agent's)")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.agent or 'operator'}: {self.url}"


class Event(models.Model):
    """The outbox: one row per event, written in the transaction that made it. `data` is the booking's API JSON at
    that moment; NULL for the lane's and the no-show sweep's (written by a trigger, see the migration), filled from
    the booking when the event is fanned out."""

    id = models.BigAutoField(primary_key=True)
    type = models.CharField(max_length=40)
    booking = models.ForeignKey("bookings.Booking", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    agent = models.ForeignKey("agents.Agent", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    data = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    fanned_out = models.BooleanField(default=False)

    class Meta:
        indexes = [
            models.Index(fields=["id"], condition=models.Q(fanned_out=False), name="webhook_event_waiting"),
        ]

    def __str__(self) -> str:
        return f"{self.type} #{self.pk}"


class Delivery(models.Model):
    """One event to one endpoint, retried until delivered or given up. Per endpoint, the deliveries of one booking
    are sent one at a time in event order: a delivery waits while an earlier one of its booking is undelivered."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    id = models.BigAutoField(primary_key=True)
    endpoint = models.ForeignKey(Endpoint, related_name="deliveries", on_delete=models.CASCADE)
    event = models.ForeignKey(Event, related_name="deliveries", on_delete=models.CASCADE)
    booking_id = models.BigIntegerField(null=True, blank=True)  # the event's, for the per-booking order
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    lease_until = models.DateTimeField(null=True, blank=True, help_text="A sender holds it until then")
    first_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "deliveries"
        indexes = [
            # The undelivered ones, by endpoint and booking: the claim's "next due" and "earlier of its booking".
            models.Index(
                fields=["endpoint", "booking_id", "id"],
                condition=models.Q(status__in=["pending", "sending"]),
                name="webhook_delivery_open",
            ),
            # The same in id order: the claim's "oldest due first" stops after its batch instead of sorting them all.
            models.Index(
                fields=["endpoint", "id"],
                condition=models.Q(status__in=["pending", "sending"]),
                name="webhook_delivery_open_by_id",
            ),
            # The ones in flight: the claim counts them, whatever the backlog behind them.
            models.Index(fields=["endpoint"], condition=models.Q(status="sending"), name="webhook_delivery_sending"),
        ]

    def __str__(self) -> str:
        return f"{self.event} -> {self.endpoint_id}"


class Attempt(models.Model):
    """The delivery log: one row per HTTP attempt."""

    id = models.BigAutoField(primary_key=True)
    delivery = models.ForeignKey(Delivery, related_name="attempt_log", on_delete=models.CASCADE)
    endpoint = models.ForeignKey(Endpoint, related_name="attempt_log", on_delete=models.CASCADE, db_index=False)
    at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    response_excerpt = models.CharField(max_length=500, blank=True)
    error = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [models.Index(fields=["endpoint", "-at"], name="webhook_attempt_by_endpoint")]

    def __str__(self) -> str:
        return f"{self.delivery_id} {self.status_code or self.error}"
