"""The double-entry ledger and the documents around it (payments, overstay charges, agents' invoices).

Chart of accounts (seeded by migration 0002, see `chart.py` for what each account is for):

    1010 Cash                      asset      payments by method (one account per method)
    1020 Card clearing             asset
    1030 Bank                      asset      also agents' invoice payments
    1100 Booking receivables       asset      sub-ledger per booking: what is still owed on it
    1200 Agent receivables         asset      sub-ledger per agent: what agents owe on issued invoices
    1400 Input VAT                 asset      VAT on agents' commission (per booking and agent, tagged with its rate)
    2100 Agent commission payable  liability  sub-ledger per agent (and booking): commission earned, not yet netted
    2200 Output VAT                liability  VAT on sales, fees and overstays (per booking, tagged with its rate)
    4000 Parking revenue           income     per booking
    4100 Overstay revenue          income     per booking
    5100 Agent commission expense  expense    per booking
    5200 Card processing fees      expense    the card acquirer's fees, posted with its payouts

Every line carries a signed `amount`: positive = debit, negative = credit. A `LedgerTransaction` is one balanced
unit (its lines sum to zero), in one currency, dated in an accounting period (a month). Entries are immutable:
model save/delete refuse changes, the admin is read-only, and on PostgreSQL triggers refuse UPDATE/DELETE and a
deferred constraint trigger refuses to commit an unbalanced transaction.
"""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

ZERO = Decimal("0.00")


class ImmutableError(ValidationError):
    """Raised when code tries to change or delete a posted ledger entry: corrections are new entries."""


class Account(models.Model):
    class Kind(models.TextChoices):
        ASSET = "asset", "Asset"
        LIABILITY = "liability", "Liability"
        EQUITY = "equity", "Equity"
        INCOME = "income", "Income"
        EXPENSE = "expense", "Expense"

    code = models.CharField(max_length=8, unique=True)
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class AccountingPeriod(models.Model):
    """A month of the books. A closed month refuses new postings (its first day identifies it)."""

    month = models.DateField(unique=True, help_text="First day of the month")
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["month"]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {'closed' if self.closed_at else 'open'}"


class LedgerTransaction(models.Model):
    """One balanced posting: the money side of one event (a booking sold, a payment, an invoice...)."""

    class Kind(models.TextChoices):
        BOOKING = "booking", "Booking sold / amended / cancelled"
        PAYMENT = "payment", "Payment received"
        REFUND = "refund", "Refund paid"
        OVERSTAY = "overstay", "Overstay charge"
        INVOICE = "invoice", "Agent invoice issued"
        CREDIT_NOTE = "credit_note", "Agent credit note issued"
        INVOICE_PAYMENT = "invoice_payment", "Agent invoice paid"
        ALLOWANCE = "allowance", "Sale reduced (partial refund of a live booking)"
        CANCELLATION_FEE = "cancellation_fee", "Cancellation fee retained"
        ADJUSTMENT = "adjustment", "Manual correction"
        CARD_PAYOUT = "card_payout", "Card payout to the bank (fees kept)"

    date = models.DateField(db_index=True, help_text="Accounting date (the car park's local date of the event)")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    currency = models.CharField(max_length=3)
    memo = models.CharField(max_length=200, blank=True)
    carpark = models.ForeignKey("carparks.CarPark", null=True, blank=True, related_name="+", on_delete=models.PROTECT)
    booking = models.ForeignKey(
        "bookings.Booking", null=True, blank=True, related_name="ledger_transactions", on_delete=models.PROTECT
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)

    class Meta:
        ordering = ["date", "id"]

    def __str__(self) -> str:
        return f"T{self.pk} {self.date} {self.kind} {self.memo}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise ImmutableError("Ledger transactions are immutable; post a correcting transaction instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableError("Ledger transactions are never deleted; post a correcting transaction instead.")


class LedgerLine(models.Model):
    """One side of a posting: a signed amount (debit > 0, credit < 0) on an account, with its dimensions."""

    transaction = models.ForeignKey(LedgerTransaction, related_name="lines", on_delete=models.PROTECT)
    account = models.ForeignKey(Account, related_name="lines", on_delete=models.PROTECT)
    amount = models.DecimalField(max_digits=14, decimal_places=2, help_text="Debit > 0, credit < 0")
    booking = models.ForeignKey(
        "bookings.Booking", null=True, blank=True, related_name="ledger_lines", on_delete=models.PROTECT
    )
    agent = models.ForeignKey("agents.Agent", null=True, blank=True, related_name="+", on_delete=models.PROTECT)
    # On the net and VAT lines of a VAT-split posting (and the gross commission payable): the rate it was split at,
    # so that a later reduction reverses VAT at the rate originally charged. Null on lines VAT does not concern.
    vat_rate = models.DecimalField(max_digits=5, decimal_places=4, null=True, blank=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=~models.Q(amount=0), name="ledger_line_amount_nonzero")]
        indexes = [
            models.Index(fields=["booking", "account"]),
            models.Index(fields=["agent", "account"]),
            models.Index(fields=["account", "transaction"]),
        ]

    def __str__(self) -> str:
        return f"{self.account.code} {self.amount}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise ImmutableError("Ledger lines are immutable; post a correcting transaction instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableError("Ledger lines are never deleted; post a correcting transaction instead.")


class CarParkRates(models.Model):
    """Accounting settings of one car park: the overstay rate (per started hour or day after the grace period)."""

    class Unit(models.TextChoices):
        HOUR = "hour", "Per started hour"
        DAY = "day", "Per started day"

    carpark = models.OneToOneField("carparks.CarPark", related_name="accounting_rates", on_delete=models.CASCADE)
    overstay_rate = models.DecimalField(max_digits=10, decimal_places=2, default=ZERO)
    overstay_unit = models.CharField(max_length=4, choices=Unit.choices, default=Unit.HOUR)

    class Meta:
        verbose_name_plural = "car park rates"

    def __str__(self) -> str:
        return f"{self.carpark_id}: {self.overstay_rate}/{self.overstay_unit}"


class VatRate(models.Model):
    """A VAT rate period: `rate` applies to supplies from `valid_from` until the next period starts.

    Operator-wide when `carpark` is empty; a car park's own periods apply from its first one on (before it, the
    operator's). Seeded with the UK standard rate, 20% from 4 January 2011. Prices are VAT-inclusive at this rate.
    """

    carpark = models.ForeignKey(
        "carparks.CarPark", null=True, blank=True, related_name="vat_rates", on_delete=models.CASCADE
    )
    valid_from = models.DateField(help_text="First day (the car park's local date) the rate applies to")
    rate = models.DecimalField(max_digits=5, decimal_places=4, help_text="0.2000 for 20%")
    note = models.CharField(max_length=100, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["carpark", "valid_from"], nulls_distinct=False, name="vat_rate_one_per_day"
            ),
            models.CheckConstraint(condition=models.Q(rate__gte=0, rate__lt=1), name="vat_rate_fraction"),
        ]
        ordering = ["carpark", "-valid_from"]

    def __str__(self) -> str:
        return f"{self.carpark or 'operator'}: {format((self.rate * 100).normalize(), 'f')}% from {self.valid_from}"


class Payment(models.Model):
    """Money received for a booking (or refunded: kind=refund), by staff or through the API."""

    class Method(models.TextChoices):
        CASH = "cash", "Cash"
        CARD = "card", "Card"
        BANK_TRANSFER = "bank_transfer", "Bank transfer"

    class Kind(models.TextChoices):
        PAYMENT = "payment", "Payment"
        REFUND = "refund", "Refund"

    booking = models.ForeignKey("bookings.Booking", related_name="payments", on_delete=models.PROTECT)
    kind = models.CharField(max_length=7, choices=Kind.choices, default=Kind.PAYMENT)
    method = models.CharField(max_length=16, choices=Method.choices)
    amount = models.DecimalField(max_digits=12, decimal_places=2, help_text="Always positive; kind gives the sign")
    currency = models.CharField(max_length=3)
    external_reference = models.CharField(max_length=100, blank=True)
    received_at = models.DateTimeField()
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    transaction = models.OneToOneField(LedgerTransaction, related_name="payment", on_delete=models.PROTECT)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(amount__gt=0), name="payment_amount_positive")]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} {self.currency} on {self.booking_id}"


class OverstayCharge(models.Model):
    """An overstay charge for a booking's visit (one per visit: posting it twice changes nothing)."""

    booking = models.ForeignKey("bookings.Booking", related_name="overstay_charges", on_delete=models.PROTECT)
    visit_id = models.BigIntegerField(null=True, blank=True, unique=True, help_text="apps.access Visit id")
    exited_at = models.DateTimeField()
    units = models.PositiveIntegerField()
    unit = models.CharField(max_length=4, choices=CarParkRates.Unit.choices)
    rate = models.DecimalField(max_digits=10, decimal_places=2)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    transaction = models.OneToOneField(LedgerTransaction, related_name="overstay_charge", on_delete=models.PROTECT)

    def __str__(self) -> str:
        return f"overstay {self.amount} on {self.booking_id}"


class InvoiceCounter(models.Model):
    """The last number used per series and year; locked with SELECT ... FOR UPDATE so numbers have no gaps."""

    series = models.CharField(max_length=4)
    year = models.PositiveIntegerField()
    last = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["series", "year"], name="invoice_counter_unique")]

    def __str__(self) -> str:
        return f"{self.series}-{self.year}: {self.last}"


class Invoice(models.Model):
    """A monthly invoice (or credit note) to an agent: the bookings' prices less the agent's commission."""

    class Kind(models.TextChoices):
        INVOICE = "invoice", "Invoice"
        CREDIT_NOTE = "credit_note", "Credit note"

    class Status(models.TextChoices):
        ISSUED = "issued", "Issued"
        PAID = "paid", "Paid"

    number = models.CharField(max_length=20, unique=True)
    series = models.CharField(max_length=4)
    year = models.PositiveIntegerField()
    sequence = models.PositiveIntegerField()
    kind = models.CharField(max_length=11, choices=Kind.choices)
    agent = models.ForeignKey("agents.Agent", related_name="invoices", on_delete=models.PROTECT)
    currency = models.CharField(max_length=3)
    period = models.DateField(help_text="First day of the month invoiced")
    issued_on = models.DateField()
    gross_total = models.DecimalField(max_digits=14, decimal_places=2, default=ZERO)
    commission_total = models.DecimalField(max_digits=14, decimal_places=2, default=ZERO)
    price_vat_total = models.DecimalField(max_digits=14, decimal_places=2, default=ZERO, help_text="in gross_total")
    commission_vat_total = models.DecimalField(
        max_digits=14, decimal_places=2, default=ZERO, help_text="in commission_total"
    )
    total = models.DecimalField(max_digits=14, decimal_places=2, default=ZERO, help_text="gross - commission")
    line_count = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=6, choices=Status.choices, default=Status.ISSUED)
    paid_on = models.DateField(null=True, blank=True)
    transaction = models.OneToOneField(
        LedgerTransaction, null=True, blank=True, related_name="invoice", on_delete=models.PROTECT
    )
    payment_transaction = models.OneToOneField(
        LedgerTransaction, null=True, blank=True, related_name="paid_invoice", on_delete=models.PROTECT
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["series", "year", "sequence"], name="invoice_number_unique"),
        ]
        indexes = [models.Index(fields=["agent", "period"])]
        ordering = ["-year", "-sequence"]

    def __str__(self) -> str:
        return self.number


class InvoiceLine(models.Model):
    """One booking on an invoice: what changed since it was last invoiced (signed: negative on credit notes)."""

    invoice = models.ForeignKey(Invoice, related_name="lines", on_delete=models.PROTECT)
    booking = models.ForeignKey("bookings.Booking", related_name="invoice_lines", on_delete=models.PROTECT)
    reference = models.CharField(max_length=16)
    agent_ref = models.CharField(max_length=64, blank=True)
    description = models.CharField(max_length=200)
    price = models.DecimalField(max_digits=12, decimal_places=2, help_text="Gross (VAT-inclusive)")
    commission = models.DecimalField(max_digits=12, decimal_places=2, help_text="Gross (VAT-inclusive)")
    amount = models.DecimalField(max_digits=12, decimal_places=2, help_text="price - commission")
    vat_rate = models.DecimalField(max_digits=5, decimal_places=4, default=ZERO)
    price_vat = models.DecimalField(max_digits=12, decimal_places=2, default=ZERO, help_text="Output VAT in price")
    commission_vat = models.DecimalField(
        max_digits=12, decimal_places=2, default=ZERO, help_text="Input VAT in commission"
    )

    class Meta:
        indexes = [models.Index(fields=["booking"])]

    def __str__(self) -> str:
        return f"{self.reference} {self.amount}"
