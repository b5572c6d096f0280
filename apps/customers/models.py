"""What Parkgate does for and about its customers as people: the messages it sends them, and erasures.

Personal data itself lives where the business needs it (bookings' customers and vehicles, reads, visits, agents'
emails); this app finds it, exports it, erases it and tells the customer what happens to their booking.
"""

from django.conf import settings
from django.db import models


class CustomerMessage(models.Model):
    """One message to a customer about one event of a booking: the outbox row and the record of what was sent.

    (booking, channel, event) is unique, so an event sends its message once however often it is asked for
    (services.customer_message_send); the delivery job locks the row and sends only a `pending` one.
    """

    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        SMS = "sms", "SMS"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed (gave up)"
        BOUNCED = "bounced", "Bounced"
        COMPLAINED = "complained", "Marked as spam by the recipient"
        SKIPPED = "skipped", "Skipped (no address)"
        SUPPRESSED = "suppressed", "Not sent: the address bounces"

    booking = models.ForeignKey("bookings.Booking", related_name="messages", on_delete=models.CASCADE)
    kind = models.CharField(max_length=32, help_text="The template: confirmed, amended, cancelled, reminder, ...")
    event = models.CharField(max_length=100, help_text="What it is about, once per booking and channel")
    channel = models.CharField(max_length=5, choices=Channel.choices, default=Channel.EMAIL)
    extra = models.JSONField(default=dict, blank=True, help_text="What the event adds: a refund, a pay link, ...")
    recipient = models.CharField(max_length=320, blank=True, help_text="Address or number it was sent to")
    subject = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    provider_id = models.CharField(max_length=255, blank=True, help_text="Message-ID or the provider's id")
    created_at = models.DateTimeField(auto_now_add=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True, help_text="When the sweep tries a failed send again")
    sent_at = models.DateTimeField(null=True, blank=True)
    bounced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["booking", "channel", "event"], name="customer_message_once_per_event")
        ]
        indexes = [
            # the outbox sweep
            models.Index(
                fields=["next_attempt_at"], condition=models.Q(status="pending"), name="customer_message_pending"
            ),
            models.Index(fields=["created_at"], name="customer_message_created"),  # retention
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.channel} for booking {self.booking_id} ({self.status})"


class BouncingAddress(models.Model):
    """An email address the mail provider reported as hard-bouncing, rejected or complaining (its tracking webhook):
    later messages to it are not sent but recorded as `suppressed`. Deleting the row (the admin) sends again, e.g.
    once the customer has given a working address. Personal data: exported and erased with the person."""

    email = models.CharField(max_length=320, unique=True, help_text="Lower case")
    event = models.CharField(max_length=12, help_text="bounced, rejected or complained (anymail's event type)")
    detail = models.TextField(blank=True, help_text="The provider's description and the receiving server's reply")
    message = models.ForeignKey(CustomerMessage, null=True, blank=True, related_name="+", on_delete=models.SET_NULL)
    at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "bouncing addresses"

    def __str__(self) -> str:
        return f"{self.email} ({self.event})"


class Erasure(models.Model):
    """A record that personal data was erased: when, why, by whom and how many rows, never the data itself."""

    class Trigger(models.TextChoices):
        REQUEST = "request", "The person's request"
        RETENTION = "retention", "Retention period ended"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    trigger = models.CharField(max_length=9, choices=Trigger.choices)
    matched_by = models.CharField(max_length=10, help_text="email, plate or booking (retention)")
    reason = models.TextField()
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_label = models.CharField(max_length=150, blank=True)
    booking_ids = models.JSONField(default=list, help_text="Bookings whose personal data was replaced")
    counts = models.JSONField(default=dict, help_text="Rows changed per table")

    class Meta:
        ordering = ["-at"]
        permissions = [("handle_subject_requests", "Can find, export and erase customers' personal data")]

    def __str__(self) -> str:
        return f"erasure {self.at:%Y-%m-%d %H:%M} ({self.trigger})"
