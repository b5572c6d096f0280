"""Booking emails from agents' legacy systems (docs/email-ingress.md), stored durably before the SMTP 250."""

from django.db import models


class InboundEmail(models.Model):
    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSED = "processed", "Processed"
        FAILED = "failed", "Failed"
        IGNORED = "ignored", "Ignored"
        DUPLICATE = "duplicate", "Duplicate"
        SUPERSEDED = "superseded", "Superseded"

    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    agent = models.ForeignKey("agents.Agent", null=True, related_name="emails", on_delete=models.PROTECT)
    mail_from = models.CharField(max_length=320, blank=True)
    rcpt_tos = models.JSONField(default=list)
    peer = models.CharField(max_length=64, blank=True, help_text="Client address")
    raw = models.BinaryField(null=True, help_text="The exact bytes received; deleted after the retention period")
    size = models.PositiveIntegerField()
    message_id = models.CharField(max_length=998, blank=True, db_index=True)
    body_hash = models.CharField(max_length=64, db_index=True, help_text="SHA-256 of the bytes after the header block")
    subject = models.CharField(max_length=998, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RECEIVED, db_index=True)
    duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, related_name="duplicates", on_delete=models.SET_NULL
    )
    sent_at = models.DateTimeField(
        null=True, blank=True, help_text="The Date header (the forwarded message's, if any): orders the bookings"
    )
    result = models.JSONField(default=list, blank=True, help_text="One entry per booking or CSV row")
    error = models.TextField(blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    report_sent_at = models.DateTimeField(null=True, blank=True, help_text="Error report mailed to the agent")
    raw_deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # One original per (agent, Message-ID, body hash): concurrent deliveries of the same message cannot
            # both become originals; the loser is stored as a duplicate (services.inbound_email_receive).
            models.UniqueConstraint(
                fields=["agent", "message_id", "body_hash"],
                condition=models.Q(duplicate_of__isnull=True) & ~models.Q(status="duplicate"),
                name="inboundemail_one_original",
            ),
        ]
        indexes = [models.Index(fields=["status", "received_at"], name="inboundemail_outbox")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.subject[:60]} ({self.status})"

    @property
    def failed_rows(self) -> list[dict]:
        return [r for r in self.result if r.get("result") == "failed"]


class AgentBookingState(models.Model):
    """What email has done to one agent reference: the Date of the last message applied and whether it was
    cancelled. Exists before any booking (a cancel for an unknown reference is remembered here), and is the row
    locked (select_for_update) while a message is applied, so messages for one booking apply one at a time."""

    agent = models.ForeignKey("agents.Agent", related_name="email_booking_states", on_delete=models.CASCADE)
    agent_ref = models.CharField(max_length=64)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    last_email = models.ForeignKey(InboundEmail, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    cancelled = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["agent", "agent_ref"], name="agentbookingstate_unique")]

    def __str__(self) -> str:
        return f"{self.agent_id}:{self.agent_ref}"
