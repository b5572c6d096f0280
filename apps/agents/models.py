from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models


class Agent(models.Model):
    """A third-party booking agent: books by REST API and/or by email in one format."""

    class Format(models.TextChoices):
        LABELS = "labels", "Labels (Label: value lines)"
        CSV = "csv", "CSV attachment"
        FIXED = "fixed", "Fixed 80-column records"

    class PricePolicy(models.TextChoices):
        ACCEPT = "accept", "Accept"
        FLAG = "flag", "Accept and flag for review"
        REFUSE = "refuse", "Refuse (email: record at the tariff's price, flagged)"

    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=100)
    active = models.BooleanField(default=True)
    email_format = models.CharField(max_length=8, choices=Format.choices, default=Format.LABELS)
    commission_rate = models.DecimalField(max_digits=5, decimal_places=4, default=Decimal("0"), help_text="0.15 = 15%")
    # The agent's terms for the price and commission it states (apps.bookings.terms): beyond them the API refuses
    # the booking and an email is recorded with the tariff's price / contracted commission and flagged for review.
    commission_tolerance = models.DecimalField(
        max_digits=5,
        decimal_places=4,
        default=Decimal("0.05"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="How far a stated commission may exceed the contracted rate, in shares of the price: "
        "0.05 = 5 points (never more than the price)",
    )
    price_policy = models.CharField(
        max_length=8,
        choices=PricePolicy.choices,
        default=PricePolicy.FLAG,
        help_text="What happens to a stated price further from the tariff than the price tolerance",
    )
    price_tolerance = models.DecimalField(
        max_digits=5,
        decimal_places=4,
        default=Decimal("0.5"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="How far a stated price may be from the tariff's, as a share of it: 0.5 = 50% either way",
    )
    carparks = models.ManyToManyField(
        "carparks.CarPark", related_name="agents", blank=True, help_text="Contracted car parks"
    )
    # What the agent sells (apps.products): product codes at its car parks, and what a booking naming none gets.
    product_codes = models.CharField(
        max_length=200,
        blank=True,
        help_text="Product codes it may sell, space-separated (e.g. PR MG); empty: all. A car park with none of "
        "them: its default product",
    )
    default_product = models.CharField(
        max_length=16, blank=True, help_text="Product code when a booking names none; empty: the car park's default"
    )
    default_fare = models.CharField(
        max_length=16, blank=True, help_text="Fare code when a booking names none; empty: the product's first"
    )
    # Who may send mail for this agent (docs/email-ingress.md 1); empty = anyone.
    allowed_networks = models.TextField(blank=True, help_text="CIDR blocks, one per line")
    allowed_senders = models.TextField(blank=True, help_text="Envelope senders: addresses or @domains, one per line")
    smtp_username = models.CharField(max_length=64, blank=True)
    smtp_password_hash = models.CharField(max_length=256, blank=True)
    error_report_address = models.EmailField(blank=True)
    # On its invoices and credit notes: the agent supplies the commission to us, and its input VAT needs this number.
    vat_number = models.CharField("VAT number", max_length=32, blank=True)
    # Parkgate writes to the agent's customers (confirmed, changed, cancelled, reminder, overstay pay link) when the
    # booking carries their address; off where the agent's contract keeps its customers to itself. Agents that
    # existed before this setting start with it off (migration 0005): nobody is written to until staff say so.
    message_customers = models.BooleanField(
        default=True, help_text="Send the booking's messages to the agent's customer (if its contract allows)"
    )

    def __str__(self) -> str:
        return self.code

    def sells(self, product_code: str) -> bool:
        return not self.product_codes.split() or product_code in self.product_codes.split()


class AgentMailbox(models.Model):
    agent = models.ForeignKey(Agent, related_name="mailboxes", on_delete=models.CASCADE)
    address = models.EmailField(unique=True)

    def __str__(self) -> str:
        return self.address

    def save(self, *args, **kwargs):
        self.address = self.address.lower()
        super().save(*args, **kwargs)


class ApiToken(models.Model):
    """An agent's REST API token. Only a SHA-256 hash is kept; the token is shown once."""

    agent = models.ForeignKey(Agent, related_name="api_tokens", on_delete=models.CASCADE)
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=12, help_text="First characters, to recognise a token")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.agent.code}: {self.prefix}… {self.name}"
