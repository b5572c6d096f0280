from django.db import models


class Customer(models.Model):
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)

    def __str__(self) -> str:
        return self.name


class Booking(models.Model):
    class Status(models.TextChoices):
        CONFIRMED = "confirmed", "Confirmed"
        ARRIVED = "arrived", "Arrived"
        DEPARTED = "departed", "Departed"
        CANCELLED = "cancelled", "Cancelled"
        NO_SHOW = "no_show", "No show"

    class Source(models.TextChoices):
        WEB = "web", "Website"
        API = "api", "Agent API"
        EMAIL = "email", "Agent email"
        STAFF = "staff", "Staff"

    reference = models.CharField(max_length=16, unique=True, help_text="Our reference, e.g. PG-7K3M9Q")
    carpark = models.ForeignKey("carparks.CarPark", related_name="bookings", on_delete=models.PROTECT)
    brand = models.ForeignKey("carparks.Brand", null=True, blank=True, on_delete=models.PROTECT)
    agent = models.ForeignKey("agents.Agent", null=True, blank=True, related_name="bookings", on_delete=models.PROTECT)
    agent_ref = models.CharField(max_length=64, null=True, blank=True)
    customer = models.ForeignKey(Customer, related_name="bookings", on_delete=models.PROTECT)
    arrival = models.DateTimeField(help_text="UTC")
    departure = models.DateTimeField(help_text="UTC")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CONFIRMED, db_index=True)
    source = models.CharField(max_length=5, choices=Source.choices)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3)
    commission = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    overbooked = models.BooleanField(default=False, help_text="Recorded although the car park was full")
    flight_outbound = models.CharField(max_length=16, blank=True)
    flight_return = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agent", "agent_ref"], name="booking_agent_ref_unique"),
            models.CheckConstraint(
                condition=models.Q(departure__gt=models.F("arrival")), name="booking_departure_after_arrival"
            ),
        ]
        indexes = [models.Index(fields=["carpark", "arrival"]), models.Index(fields=["agent", "updated_at"])]

    def __str__(self) -> str:
        return self.reference


class Vehicle(models.Model):
    """A vehicle registered on a booking; plates in raw, normal and look-alike form (apps.core.plates)."""

    booking = models.ForeignKey(Booking, related_name="vehicles", on_delete=models.CASCADE)
    registration_raw = models.CharField(max_length=20)
    registration = models.CharField(max_length=20, db_index=True, help_text="Normal form: A-Z, 0-9")
    lookalike_key = models.CharField(max_length=20, db_index=True)
    make = models.CharField(max_length=40, blank=True)
    model = models.CharField(max_length=40, blank=True)
    colour = models.CharField(max_length=30, blank=True)

    def __str__(self) -> str:
        return self.registration
