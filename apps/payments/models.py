"""Card payments: one Payment per PaymentIntent (a booking's price, an amendment's top-up, an overstay), the
refunds of each, and every provider webhook event received (applied once, by its id).

The ledger side of each is an apps.accounting Payment (`ledger_payment`), posted when the money has moved.
"""

from django.conf import settings
from django.db import models


class Payment(models.Model):
    class Purpose(models.TextChoices):
        BOOKING = "booking", "Booking"
        TOP_UP = "top_up", "Amendment top-up"
        OVERSTAY = "overstay", "Overstay"

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for the card"  # an intent exists, not paid yet
        SUCCEEDED = "succeeded", "Paid"
        FAILED = "failed", "Failed"  # declined, cancelled, or the provider could not be reached
        MISMATCH = "mismatch", "Amount or currency mismatch"  # paid, but not what we asked: staff look at it

    booking = models.ForeignKey("bookings.Booking", related_name="card_payments", on_delete=models.PROTECT)
    overstay = models.ForeignKey(
        "accounting.OverstayCharge", null=True, blank=True, related_name="card_payments", on_delete=models.PROTECT
    )
    purpose = models.CharField(max_length=10, choices=Purpose.choices, default=Purpose.BOOKING)
    provider = models.CharField(max_length=16)
    intent_id = models.CharField(max_length=100, blank=True, help_text="The provider's PaymentIntent id")
    client_secret = models.CharField(max_length=200, blank=True)
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    changes = models.JSONField(null=True, blank=True, help_text="A top-up: the amendment applied once paid")
    last_error = models.CharField(max_length=300, blank=True)
    ledger_payment = models.OneToOneField(
        "accounting.Payment", null=True, blank=True, related_name="card_payment", on_delete=models.PROTECT
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "intent_id"], condition=~models.Q(intent_id=""), name="payment_intent_unique"
            )
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="payment_status_created")]  # reconcile, lists

    def __str__(self) -> str:
        return f"{self.intent_id or self.pk} {self.amount} {self.currency} {self.status}"

    @property
    def idempotency_key(self) -> str:
        """The key of this payment's intent at the provider: a retried create never makes a second intent."""
        return f"parkgate-payment-{self.pk}"


class Refund(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"  # asked for; retried by a job until the provider answers
        SUCCEEDED = "succeeded", "Refunded"
        FAILED = "failed", "Failed"  # the provider refused it, or retries ran out: staff see it

    payment = models.ForeignKey(Payment, related_name="refunds", on_delete=models.PROTECT)
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    reason = models.CharField(max_length=300)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    provider_refund_id = models.CharField(max_length=100, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, related_name="+", on_delete=models.SET_NULL
    )
    ledger_payment = models.OneToOneField(
        "accounting.Payment", null=True, blank=True, related_name="card_refund", on_delete=models.PROTECT
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"refund {self.amount} of {self.payment_id} {self.status}"

    @property
    def idempotency_key(self) -> str:
        return f"parkgate-refund-{self.pk}"


class WebhookEvent(models.Model):
    """A provider's event, stored when its signature checks out; applied once by a job (`applied_at`)."""

    provider = models.CharField(max_length=16)
    event_id = models.CharField(max_length=100)
    type = models.CharField(max_length=100)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["provider", "event_id"], name="webhook_event_once")]

    def __str__(self) -> str:
        return f"{self.provider} {self.event_id} {self.type}"


class OverstayPayLink(models.Model):
    """A pay link (`/pay/<token>`) naming one overstay and nothing else: a visit held at an exit (policy `hold`,
    shown as a QR code on the lane's display) or flagged as it left (`open_and_flag`, emailed). The token is the
    only key to it."""

    token = models.CharField(max_length=64, unique=True)
    visit = models.ForeignKey("access.Visit", related_name="+", on_delete=models.CASCADE)
    lane = models.ForeignKey("carparks.Lane", null=True, blank=True, related_name="+", on_delete=models.SET_NULL)
    booking = models.ForeignKey("bookings.Booking", related_name="+", on_delete=models.PROTECT)
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3)
    payment = models.OneToOneField(
        Payment, null=True, blank=True, related_name="overstay_link", on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"overstay of visit {self.visit_id}: {self.amount} {self.currency}"


class LaneDisplay(models.Model):
    """A screen at a lane's barrier showing the pay link of a held overstay. Its token is issued once (shown once,
    kept as a hash), like a lane controller's; the page answers only with it."""

    lane = models.ForeignKey("carparks.Lane", related_name="+", on_delete=models.CASCADE)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"display of lane {self.lane_id}"


class Payout(models.Model):
    """A payout from the card provider to the bank (Stripe's `po_...`), imported with its balance transactions.
    `matched`: every card payment and refund it settles is one of ours, for the same amount, and its lines add up
    to what reached the bank. Posted to the ledger once paid (`ledger_transaction`)."""

    provider = models.CharField(max_length=16)
    payout_id = models.CharField(max_length=100)
    amount = models.DecimalField(max_digits=12, decimal_places=2, help_text="What reaches the bank")
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, help_text="The provider's: pending, in_transit, paid, failed, canceled")
    arrival_date = models.DateField()
    settled = models.DecimalField(max_digits=12, decimal_places=2, default=0, help_text="Card payments less refunds")
    fees = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    matched = models.BooleanField(default=False)
    ledger_transaction = models.OneToOneField(
        "accounting.LedgerTransaction", null=True, blank=True, related_name="+", on_delete=models.PROTECT
    )
    imported_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["provider", "payout_id"], name="payout_once")]
        ordering = ["-arrival_date", "-pk"]

    def __str__(self) -> str:
        return f"{self.payout_id} {self.amount} {self.currency} {self.status}"


class PayoutLine(models.Model):
    """One balance transaction of a payout: a card payment (matched to ours by its PaymentIntent), a refund
    (by the provider's refund id), or the provider's own (fees, adjustments: unmatched by nature, posted as fees)."""

    payout = models.ForeignKey(Payout, related_name="lines", on_delete=models.CASCADE)
    balance_transaction_id = models.CharField(max_length=100)
    type = models.CharField(max_length=32)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    fee = models.DecimalField(max_digits=12, decimal_places=2)
    net = models.DecimalField(max_digits=12, decimal_places=2)
    source_id = models.CharField(max_length=100, blank=True)
    payment = models.ForeignKey(Payment, null=True, blank=True, related_name="payout_lines", on_delete=models.SET_NULL)
    refund = models.ForeignKey(Refund, null=True, blank=True, related_name="payout_lines", on_delete=models.SET_NULL)
    matched = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["payout", "balance_transaction_id"], name="payout_line_once")]

    def __str__(self) -> str:
        return f"{self.balance_transaction_id} {self.type} {self.amount}"
