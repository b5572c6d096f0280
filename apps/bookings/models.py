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

    # A booking is updated on the barrier's path (arrived, departed), and its indexes with it: none that another
    # already covers (carpark: (carpark, arrival); agent: (agent, agent_ref) and (agent, updated_at); updated_at:
    # (agent, updated_at)), none for LIKE (reference and status are unique-or-equal look-ups: constraint and Meta).
    reference = models.CharField(max_length=16, help_text="Our reference, e.g. PG-7K3M9Q")
    carpark = models.ForeignKey("carparks.CarPark", related_name="bookings", on_delete=models.PROTECT, db_index=False)
    brand = models.ForeignKey("carparks.Brand", null=True, blank=True, on_delete=models.PROTECT)
    agent = models.ForeignKey(
        "agents.Agent", null=True, blank=True, related_name="bookings", on_delete=models.PROTECT, db_index=False
    )
    agent_ref = models.CharField(max_length=64, null=True, blank=True)
    customer = models.ForeignKey(Customer, related_name="bookings", on_delete=models.PROTECT)
    arrival = models.DateTimeField(help_text="UTC")
    departure = models.DateTimeField(help_text="UTC")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CONFIRMED)
    source = models.CharField(max_length=5, choices=Source.choices)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3)
    commission = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    overbooked = models.BooleanField(default=False, help_text="Recorded although the car park was full")
    needs_review = models.BooleanField(
        default=False, help_text="Price or commission beyond the agent's terms (see the note); staff clear it"
    )
    review_note = models.TextField(blank=True, help_text="Why the booking was flagged, newest last")
    flight_outbound = models.CharField(max_length=16, blank=True)
    flight_return = models.CharField(max_length=16, blank=True)
    confirmation_sent_at = models.DateTimeField(null=True, blank=True, help_text="Confirmation email sent (web)")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # The name unique=True gave it: bookings.services draws a new reference when this one is violated.
            models.UniqueConstraint(fields=["reference"], name="bookings_booking_reference_key"),
            models.UniqueConstraint(fields=["agent", "agent_ref"], name="booking_agent_ref_unique"),
            models.CheckConstraint(
                condition=models.Q(departure__gt=models.F("arrival")), name="booking_departure_after_arrival"
            ),
        ]
        indexes = [
            models.Index(fields=["carpark", "arrival"]),
            models.Index(fields=["agent", "updated_at"]),
            models.Index(fields=["status"], name="booking_status"),  # the no-show sweep, admin's filter
        ]

    def __str__(self) -> str:
        return self.reference

    @property
    def holds_space(self) -> bool:
        """A booking holds a space on its days unless it is cancelled (see apps.bookings.capacity)."""
        return self.status != self.Status.CANCELLED


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


class CapacityDay(models.Model):
    """Spaces held at a car park on one local calendar date: one row per (car park, date), created on demand.

    `held` counts the bookings (not cancelled) whose stay touches the date. Writers lock these rows with
    SELECT ... FOR UPDATE in (car park, date) order, so concurrent bookings serialise per day and never deadlock.
    """

    carpark = models.ForeignKey("carparks.CarPark", related_name="capacity_days", on_delete=models.CASCADE)
    date = models.DateField()
    held = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["carpark", "date"], name="capacity_day_unique"),
            models.CheckConstraint(condition=models.Q(held__gte=0), name="capacity_day_held_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.carpark_id} {self.date}: {self.held}"


class ApiIdempotencyKey(models.Model):
    """The first response to an agent's POST with an `Idempotency-Key`, replayed for 24 h (docs/operations.md 5)."""

    agent = models.ForeignKey("agents.Agent", related_name="+", on_delete=models.CASCADE)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and canonical body")
    status_code = models.PositiveSmallIntegerField(default=0)
    response = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["agent", "key"], name="idempotency_key_unique_per_agent")]

    def __str__(self) -> str:
        return f"{self.agent_id}: {self.key}"


class BookingFormToken(models.Model):
    """A website booking form's one-time token (apps.bookings.forms.BookForm) and the booking it made.

    Claimed first, in the booking's own transaction: the same form sent again (a double click, a refresh, back and
    resubmit), even at the same moment, gets that booking instead of a second one. A failed attempt leaves no row.
    """

    token = models.CharField(max_length=64)
    booking = models.OneToOneField(Booking, null=True, related_name="+", on_delete=models.CASCADE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["token"], name="booking_form_token_unique")]  # no LIKE index

    def __str__(self) -> str:
        return self.token


class BookingChange(models.Model):
    """One step of a booking's history (apps.bookings.history): what changed, when, by whom (customer, agent,
    staff, system), with the booking as it stood after it. Shown to the customer on the manage page."""

    booking = models.ForeignKey(Booking, related_name="changes", on_delete=models.CASCADE)
    at = models.DateTimeField(auto_now_add=True)
    action = models.CharField(max_length=16, help_text="created, amended, cancelled, ...")
    actor = models.CharField(max_length=8, help_text="customer, agent, staff or system")
    actor_label = models.CharField(max_length=150, blank=True, help_text="Which agent or staff member")
    changes = models.JSONField(default=list, blank=True, help_text='[{"field", "from", "to"}]')
    snapshot = models.JSONField(default=dict, help_text="The booking after this step")

    class Meta:
        indexes = [models.Index(fields=["booking", "at"])]

    def __str__(self) -> str:
        return f"{self.booking_id} {self.action} by {self.actor} at {self.at:%Y-%m-%d %H:%M}"
