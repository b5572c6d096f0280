from decimal import Decimal
from typing import NamedTuple
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_noop


class Policy(NamedTuple):
    slug: str  # its page: /<slug>/ on the brand's site
    title: str
    text: str


def offered_language(value: str) -> None:
    from django.conf import settings

    if value not in dict(settings.LANGUAGES):
        raise ValidationError(f"{value!r} is not one of the languages offered: {', '.join(dict(settings.LANGUAGES))}")


class Brand(models.Model):
    """A customer-facing brand: its own domains, name, colours and logo, contact details and policies."""

    POLICIES = (
        ("terms", "terms", gettext_noop("Terms and conditions")),
        ("cancellation", "cancellation_policy", gettext_noop("Cancellation policy")),
        ("privacy", "privacy_notice", gettext_noop("Privacy notice")),
    )  # slug, field, title (translated where shown: the site's templates)

    code = models.SlugField(unique=True)
    name = models.CharField(max_length=100)
    primary_colour = models.CharField(max_length=7, default="#1d4ed8")
    accent_colour = models.CharField(max_length=7, default="#f59e0b")
    logo_text = models.CharField(max_length=40, blank=True, help_text="Short wordmark shown as the logo")
    support_email = models.EmailField(blank=True)
    email_from = models.EmailField(
        blank=True, help_text="Address customers' messages come from (named as the brand); empty: DEFAULT_FROM_EMAIL's"
    )
    support_phone = models.CharField(max_length=32, blank=True)
    # Emails are built in jobs, with no request to take a host from: their links start here.
    base_url = models.URLField(
        help_text="The site's public address, e.g. https://skyline.parkgate.test: links in emails start with it. "
        "Its host must be one of the brand's domains."
    )
    # Its site's pages and its customers' messages are in this language (settings.LANGUAGES: one catalogue each
    # under locale/); a brand is one market, so the site and the emails sent from jobs, which have no request
    # to read a browser's preference from, agree.
    language = models.CharField(
        max_length=10, default="en-gb", validators=[offered_language], help_text="One of settings.LANGUAGES"
    )
    # Plain text, shown as paragraphs; a policy left empty is neither linked nor served.
    terms = models.TextField("terms and conditions", blank=True)
    cancellation_policy = models.TextField(blank=True)
    privacy_notice = models.TextField(blank=True)

    def __str__(self) -> str:
        return self.name

    def policies(self) -> list[Policy]:
        """The policies the brand has written, in the order its pages list them."""
        return [Policy(slug, title, getattr(self, f)) for slug, f, title in self.POLICIES if getattr(self, f)]

    def link(self, path: str) -> str:
        """An absolute link to a path of the brand's site, for emails."""
        return self.base_url.rstrip("/") + path


class BrandDomain(models.Model):
    brand = models.ForeignKey(Brand, related_name="domains", on_delete=models.CASCADE)
    host = models.CharField(max_length=253, unique=True, help_text="Host name without port, lower case")

    def __str__(self) -> str:
        return self.host

    def save(self, *args, **kwargs):
        self.host = self.host.lower()
        super().save(*args, **kwargs)


class CarPark(models.Model):
    class OverstayPolicy(models.TextChoices):
        OPEN_AND_FLAG = "open_and_flag", "Open and flag"
        HOLD = "hold", "Hold at the barrier"

    class AntiPassback(models.TextChoices):
        HARD = "hard", "Hard (deny)"
        SOFT = "soft", "Soft (close old visit, alert)"

    code = models.CharField(max_length=8, unique=True)
    name = models.CharField(max_length=100)
    capacity = models.PositiveIntegerField(help_text="Bookable spaces per day")
    timezone = models.CharField(max_length=64, default="Europe/London")
    currency = models.CharField(max_length=3, default="GBP")
    brands = models.ManyToManyField(Brand, related_name="carparks", blank=True, help_text="Brands that sell it")
    # What a customer needs to find it and get in: shown on the brands' sites and in confirmation emails.
    address = models.TextField(blank=True, help_text="Postal address, one part a line; the map link searches it")
    opening_hours = models.CharField(max_length=200, blank=True, help_text="e.g. Open 24 hours, every day")
    directions = models.TextField(blank=True, help_text="How to get there and where to go on arrival")
    phone = models.CharField(max_length=32, blank=True, help_text="The car park's own number, for the day")

    # Lane controller policies (device-protocol.md): per car park, editable by supervisors.
    min_score = models.DecimalField(
        max_digits=3,
        decimal_places=2,
        default=Decimal("0.70"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))],
    )
    repeat_window_s = models.PositiveIntegerField(default=15)
    stale_after_s = models.PositiveIntegerField(default=30)
    early_arrival_min = models.PositiveIntegerField(default=120)
    grace_min = models.PositiveIntegerField(default=60)
    # A returning customer's car is due out this long after their return flight lands (apps.bookings.flights).
    baggage_allowance_min = models.PositiveIntegerField(
        default=45, help_text="Minutes from the return flight's landing to the customer at the car"
    )
    overstay_policy = models.CharField(
        max_length=16, choices=OverstayPolicy.choices, default=OverstayPolicy.OPEN_AND_FLAG
    )
    anti_passback = models.CharField(max_length=8, choices=AntiPassback.choices, default=AntiPassback.HARD)
    read_retention_days = models.PositiveIntegerField(default=90)
    # Card payments (apps.payments): a website booking unpaid this long expires and frees its spaces. What a
    # cancellation keeps is the booking's fare's (apps.products.fares).
    payment_window_min = models.PositiveIntegerField(
        default=20, help_text="Minutes a website booking waits for payment"
    )
    # Personal data kept (issue 32; apps.customers.retention enforces it, the brands' privacy pages state it).
    booking_retention_months = models.PositiveSmallIntegerField(
        default=24, help_text="Months after departure until a booking's personal data is erased"
    )
    message_retention_days = models.PositiveSmallIntegerField(
        default=365, help_text="Days the messages sent to customers are kept"
    )

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def address_line(self) -> str:
        return ", ".join(part.strip() for part in self.address.splitlines() if part.strip())

    @property
    def map_url(self) -> str:
        """A plain link to a map search of the address (no map embedded: no third-party script on our pages)."""
        return "https://www.openstreetmap.org/search?" + urlencode({"query": self.address_line}) if self.address else ""

    def device_settings(self) -> dict:
        """The settings a lane controller receives in `welcome`."""
        return {
            "min_score": float(self.min_score),
            "repeat_window_s": self.repeat_window_s,
            "stale_after_s": self.stale_after_s,
        }


class Lane(models.Model):
    class Direction(models.TextChoices):
        ENTRY = "entry", "Entry"
        EXIT = "exit", "Exit"

    carpark = models.ForeignKey(CarPark, related_name="lanes", on_delete=models.CASCADE)
    code = models.CharField(max_length=16)
    direction = models.CharField(max_length=5, choices=Direction.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["carpark", "code"], name="lane_code_unique_per_carpark")]
        ordering = ["carpark", "code"]

    def __str__(self) -> str:
        return f"{self.carpark.code}/{self.code}"


class Tariff(models.Model):
    """What a stay at a car park costs: a daily rate, optional bands from a given day on, and a minimum charge.

    The tariff with `brand` empty is the car park's own (agents and the API pay it); one with a brand overrides it
    for that brand's website. How a stay is counted in days: apps.bookings.pricing.
    """

    carpark = models.ForeignKey(CarPark, related_name="tariffs", on_delete=models.CASCADE)
    brand = models.ForeignKey(
        Brand, null=True, blank=True, related_name="tariffs", on_delete=models.CASCADE, help_text="Empty: default"
    )
    daily_rate = models.DecimalField(max_digits=8, decimal_places=2, validators=[MinValueValidator(Decimal("0"))])
    minimum_charge = models.DecimalField(
        max_digits=8, decimal_places=2, default=Decimal("0"), validators=[MinValueValidator(Decimal("0"))]
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["carpark", "brand"], name="tariff_unique_per_brand"),
            models.UniqueConstraint(
                fields=["carpark"], condition=models.Q(brand__isnull=True), name="tariff_one_default_per_carpark"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.carpark.code} {self.brand or 'default'}"


class TariffBand(models.Model):
    """From day `from_day` of a stay on (1 = the first day), each day costs `daily_rate` instead of the tariff's."""

    tariff = models.ForeignKey(Tariff, related_name="bands", on_delete=models.CASCADE)
    from_day = models.PositiveIntegerField(validators=[MinValueValidator(2)])
    daily_rate = models.DecimalField(max_digits=8, decimal_places=2, validators=[MinValueValidator(Decimal("0"))])

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tariff", "from_day"], name="tariff_band_unique_day")]
        ordering = ["tariff", "from_day"]

    def __str__(self) -> str:
        return f"from day {self.from_day}: {self.daily_rate}"
