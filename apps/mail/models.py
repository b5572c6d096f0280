"""Booking emails from agents' legacy systems (email-ingress.md), stored durably before the SMTP 250."""

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
    result = models.JSONField(default=list, blank=True, help_text="One entry per booking or CSV row")
    error = models.TextField(blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    raw_deleted_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"#{self.pk} {self.subject[:60]} ({self.status})"
