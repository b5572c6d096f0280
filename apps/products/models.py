"""What an operator sells at a car park: products (each with its own spaces a day), their fares, extras with stock,
a price calendar per product, promo codes, and the spaces each channel may sell (with stop-sell).

A channel is a string: "web" for the brands' websites (and staff), an agent's code for that agent; on a calendar
range or a stop-sell an empty channel means every channel. How a stay is priced: apps.products.pricing.
"""

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

WEB = "web"
CHANNEL_HELP = "Empty: every channel; \"web\": the brands' websites (and staff); else an agent's code"
MONEY = {"max_digits": 8, "decimal_places": 2, "validators": [MinValueValidator(Decimal("0"))]}


class Product(models.Model):
    """A way to park at a car park (park and ride, meet and greet) with its own spaces per day.

    Every car park has one default product (made with it, apps.products.receivers): bookings that name none, older
    API clients and email formats without a product column get it. Its `spaces` may stay empty: the whole car park."""

    carpark = models.ForeignKey("carparks.CarPark", related_name="products", on_delete=models.CASCADE)
    code = models.CharField(max_length=16, help_text="e.g. PR, MG: what agents send")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    spaces = models.PositiveIntegerField(null=True, blank=True, help_text="Spaces per day; empty: the car park's")
    is_default = models.BooleanField(default=False)
    service = models.CharField(max_length=200, blank=True, help_text="Who or what fulfils it, e.g. drivers at T5")
    lanes = models.ManyToManyField("carparks.Lane", blank=True, related_name="products", help_text="Lanes it uses")
    position = models.PositiveSmallIntegerField(default=0, help_text="Order shown to customers")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["carpark", "code"], name="product_code_unique_per_carpark"),
            models.UniqueConstraint(
                fields=["carpark"], condition=models.Q(is_default=True), name="product_one_default_per_carpark"
            ),
        ]
        ordering = ["carpark", "position", "code"]

    def __str__(self) -> str:
        return f"{self.carpark.code}/{self.code}"

    def capacity(self, carpark_capacity: int) -> int:
        return carpark_capacity if self.spaces is None else self.spaces


class ProductText(models.Model):
    """A brand's own name and description of a product (else the product's)."""

    product = models.ForeignKey(Product, related_name="texts", on_delete=models.CASCADE)
    brand = models.ForeignKey("carparks.Brand", related_name="+", on_delete=models.CASCADE)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["product", "brand"], name="product_text_unique_per_brand")]

    def __str__(self) -> str:
        return self.name


class Fare(models.Model):
    """A product's terms of sale: its price against the calendar's, refunds and fees (apps.products.fares)."""

    product = models.ForeignKey(Product, related_name="fares", on_delete=models.CASCADE)
    code = models.CharField(max_length=16, help_text="e.g. flex, saver")
    name = models.CharField(max_length=100)
    refundable = models.BooleanField(default=True)
    refund_cutoff_hours = models.PositiveIntegerField(default=24, help_text="Refundable until this long before arrival")
    amend_fee = models.DecimalField(default=Decimal("0"), **MONEY)
    cancellation_fee = models.DecimalField(default=Decimal("0"), **MONEY)
    price_percent = models.DecimalField(
        max_digits=5, decimal_places=2, default=Decimal("0"), help_text="On the calendar's price: -10 = 10% cheaper"
    )
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["product", "code"], name="fare_code_unique_per_product")]
        ordering = ["product", "position", "code"]

    def __str__(self) -> str:
        return f"{self.product}/{self.code}"


class Extra(models.Model):
    """Something added to a stay (EV charging, a car wash), with a limited stock per day."""

    class Per(models.TextChoices):
        STAY = "stay", "Per stay"
        DAY = "day", "Per day"

    carpark = models.ForeignKey("carparks.CarPark", related_name="extras", on_delete=models.CASCADE)
    code = models.CharField(max_length=16)
    name = models.CharField(max_length=100)
    price = models.DecimalField(**MONEY)
    per = models.CharField(max_length=4, choices=Per.choices, default=Per.STAY)
    stock_per_day = models.PositiveIntegerField(help_text="How many can be sold for any one day")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["carpark", "code"], name="extra_code_unique_per_carpark")]
        ordering = ["carpark", "code"]

    def __str__(self) -> str:
        return f"{self.carpark.code}/{self.code}"


class PriceSeason(models.Model):
    """A date range of a product's price calendar: a daily rate with length-of-stay bands, for a brand and/or
    channel or all. On a day the most specific range applies (brand and channel, brand, channel, neither); ranges
    of the same product, brand and channel never overlap (apps.products.calendar refuses it, naming the other)."""

    product = models.ForeignKey(Product, related_name="seasons", on_delete=models.CASCADE)
    brand = models.ForeignKey("carparks.Brand", null=True, blank=True, related_name="+", on_delete=models.CASCADE)
    channel = models.CharField(max_length=32, blank=True, help_text=CHANNEL_HELP)
    starts = models.DateField()
    ends = models.DateField(help_text="Last day, inclusive")
    daily_rate = models.DecimalField(**MONEY)
    minimum_charge = models.DecimalField(default=Decimal("0"), **MONEY)
    bands = models.CharField(
        max_length=200, blank=True, help_text='From day N of a stay on, another daily rate: "4:10.00 8:8.00"'
    )

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(ends__gte=models.F("starts")), name="season_ends_after_start")
        ]
        indexes = [models.Index(fields=["product", "starts"])]
        ordering = ["product", "brand", "channel", "starts"]

    def __str__(self) -> str:
        return f"{self.product} {self.starts}..{self.ends}"


class PriceRule(models.Model):
    """An adjustment of a product's daily price in percent: on a weekday (1 = Monday), when booked at least N days
    ahead, or when the day is at least N% sold. Of each kind the rule with the greatest threshold reached applies."""

    class Kind(models.TextChoices):
        WEEKDAY = "weekday", "Weekday (1 = Monday)"
        LEAD_TIME = "lead_time", "Booked at least N days ahead"
        OCCUPANCY = "occupancy", "Day at least N% sold"

    product = models.ForeignKey(Product, related_name="rules", on_delete=models.CASCADE)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    threshold = models.PositiveSmallIntegerField()
    percent = models.DecimalField(max_digits=5, decimal_places=2, help_text="+15 = 15% dearer, -10 = 10% cheaper")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["product", "kind", "threshold"], name="price_rule_unique_threshold")
        ]
        ordering = ["product", "kind", "threshold"]

    def __str__(self) -> str:
        return f"{self.product} {self.kind} {self.threshold}: {self.percent:+}%"


class PromoCode(models.Model):
    """A discount customers type in: percent or amount, for a brand and/or product, with its dates, minimum stay and
    maximum uses (`uses` is counted in the booking's transaction by one conditional UPDATE: never past the limit)."""

    class Kind(models.TextChoices):
        PERCENT = "percent", "Percent off"
        AMOUNT = "amount", "Amount off"

    code = models.CharField(max_length=32, unique=True, help_text="Upper case; customers' case does not matter")
    brand = models.ForeignKey("carparks.Brand", null=True, blank=True, related_name="+", on_delete=models.CASCADE)
    product = models.ForeignKey(Product, null=True, blank=True, related_name="+", on_delete=models.CASCADE)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.PERCENT)
    value = models.DecimalField(max_digits=8, decimal_places=2, validators=[MinValueValidator(Decimal("0"))])
    book_from = models.DateField(null=True, blank=True)
    book_until = models.DateField(null=True, blank=True)
    stay_from = models.DateField(null=True, blank=True, help_text="Arrival on or after")
    stay_until = models.DateField(null=True, blank=True, help_text="Departure on or before")
    min_days = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])
    max_uses = models.PositiveIntegerField(null=True, blank=True)
    uses = models.PositiveIntegerField(default=0)
    active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(max_uses__isnull=True) | models.Q(uses__lte=models.F("max_uses")),
                name="promo_uses_within_max",
            ),
            models.CheckConstraint(
                condition=~models.Q(kind="percent") | models.Q(value__lte=100), name="promo_percent_at_most_100"
            ),
        ]

    def __str__(self) -> str:
        return self.code

    def save(self, *args, **kwargs):
        self.code = self.code.strip().upper()
        super().save(*args, **kwargs)


class ChannelAllocation(models.Model):
    """The most spaces a channel may hold of a product on any day. Channels without one sell from the product's
    spaces alone; the product's spaces are the pool all channels share (shares may add up to more)."""

    product = models.ForeignKey(Product, related_name="allocations", on_delete=models.CASCADE)
    channel = models.CharField(max_length=32, help_text='"web" or an agent\'s code')
    spaces = models.PositiveIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["product", "channel"], name="allocation_unique_channel")]

    def __str__(self) -> str:
        return f"{self.product} {self.channel}: {self.spaces}"


class StopSell(models.Model):
    """No new sale of the product on the day, on one channel or (channel empty) all; existing bookings stand."""

    product = models.ForeignKey(Product, related_name="stop_sells", on_delete=models.CASCADE)
    date = models.DateField()
    channel = models.CharField(max_length=32, blank=True, help_text=CHANNEL_HELP)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["product", "date", "channel"], name="stop_sell_unique")]

    def __str__(self) -> str:
        return f"{self.product} {self.date} {self.channel or 'all'}"


class ProductDay(models.Model):
    """Spaces of a product held on a local date: per channel, and (channel "") in all. Locked like
    bookings.CapacityDay, after it, in (product, date, channel) order (apps.products.holds)."""

    product = models.ForeignKey(Product, related_name="+", on_delete=models.CASCADE)
    date = models.DateField()
    channel = models.CharField(max_length=32, blank=True)
    held = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["product", "date", "channel"], name="product_day_unique"),
            models.CheckConstraint(condition=models.Q(held__gte=0), name="product_day_held_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.product_id} {self.date} {self.channel or 'all'}: {self.held}"


class ExtraDay(models.Model):
    """How many of an extra are sold for a local date (every day of a stay uses one per quantity)."""

    extra = models.ForeignKey(Extra, related_name="+", on_delete=models.CASCADE)
    date = models.DateField()
    held = models.IntegerField(default=0, validators=[MaxValueValidator(10**6)])

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["extra", "date"], name="extra_day_unique"),
            models.CheckConstraint(condition=models.Q(held__gte=0), name="extra_day_held_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.extra_id} {self.date}: {self.held}"
