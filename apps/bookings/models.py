from django.db import models
from django.db.models.functions import Greatest


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
        # A website booking waits for its card payment holding its spaces (apps.payments); unpaid by
        # `payment_due_by` it expires and releases them. Agents' bookings are never pending (they pay by invoice).
        PENDING_PAYMENT = "pending_payment", "Pending payment"
        EXPIRED = "expired", "Expired (unpaid)"

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
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CONFIRMED)
    source = models.CharField(max_length=5, choices=Source.choices)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3)
    commission = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    overbooked = models.BooleanField(default=False, help_text="Recorded although the car park was full")
    needs_review = models.BooleanField(
        default=False, help_text="Price or commission beyond the agent's terms (see the note); staff clear it"
    )
    review_note = models.TextField(blank=True, help_text="Why the booking was flagged, newest last")
    # Meet and greet: drivers collect the car at the terminal and bring it back (apps.ground). Until products come
    # (the products issue), this flag is what apps.ground.tasks.MEET_AND_GREET tests: re-point that one predicate.
    meet_and_greet = models.BooleanField(default=False)
    flight_outbound = models.CharField(max_length=16, blank=True)
    flight_return = models.CharField(max_length=16, blank=True)
    # The return flight as the flight-status feed reports it (apps.bookings.flights): matched by `flight_return_key`
    # (flight number normal form) and the departure's local date. The car is due out at `due_out`, the later of the
    # booked departure and the landing plus the car park's baggage allowance: overstays are measured from it.
    flight_return_key = models.CharField(max_length=16, blank=True, help_text="Normal form, e.g. BA0118")
    return_status = models.CharField(max_length=10, blank=True, help_text="Return flight's status, from the feed")
    return_estimated = models.DateTimeField(null=True, blank=True, help_text="Return flight's actual else estimated")
    return_ready_at = models.DateTimeField(null=True, blank=True, help_text="Landing + the car park's allowance")
    due_out = models.GeneratedField(
        expression=Greatest("departure", "return_ready_at"),  # PostgreSQL's GREATEST skips a NULL
        output_field=models.DateTimeField(),
        db_persist=True,
        help_text="Later of departure and return_ready_at (UTC)",
    )
    # What was sold (apps.products): the product, its fare, the promo code used and the price's breakdown as shown.
    product = models.ForeignKey("products.Product", null=True, related_name="+", on_delete=models.PROTECT)
    fare = models.ForeignKey("products.Fare", null=True, blank=True, related_name="+", on_delete=models.PROTECT)
    promo = models.ForeignKey("products.PromoCode", null=True, blank=True, related_name="+", on_delete=models.PROTECT)
    price_breakdown = models.JSONField(null=True, blank=True, help_text="Per day, rule applied, extras, discount")
    confirmation_sent_at = models.DateTimeField(null=True, blank=True, help_text="Confirmation email sent (web)")
    payment_due_by = models.DateTimeField(null=True, blank=True, help_text="A pending payment expires then (UTC)")
    cancellation_fee = models.DecimalField(
        max_digits=10, decimal_places=2, null=True, blank=True, help_text="Kept of the price when it was cancelled"
    )
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
            # the flight-status feed finds a flight's bookings (few rows have one: partial)
            models.Index(
                fields=["flight_return_key", "departure"],
                name="booking_return_flight",
                condition=~models.Q(flight_return_key=""),
            ),
        ]

    def __str__(self) -> str:
        return self.reference

    @property
    def holds_space(self) -> bool:
        """A booking holds a space on its days unless it is cancelled or expired (see apps.bookings.capacity)."""
        return self.status not in (self.Status.CANCELLED, self.Status.EXPIRED)


class BookingExtra(models.Model):
    """An extra sold with a booking (apps.products.Extra): its quantity and the price it was sold at."""

    booking = models.ForeignKey(Booking, related_name="extras", on_delete=models.CASCADE)
    extra = models.ForeignKey("products.Extra", related_name="+", on_delete=models.PROTECT)
    quantity = models.PositiveSmallIntegerField(default=1)
    price = models.DecimalField(max_digits=10, decimal_places=2)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["booking", "extra"], name="booking_extra_unique")]

    def __str__(self) -> str:
        return f"{self.booking_id} {self.extra_id} x{self.quantity}"


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


class FlightStatus(models.Model):
    """The latest word from the flight-status feed on one flight on one date (docs/flight-status.md).

    Kept whether or not a booking has the flight (one may come later), until FLIGHT_STATUS_KEEP_DAYS after its date.
    `reported_at` is the update's own time: an older update than the one kept is ignored (out-of-order delivery)."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        DELAYED = "delayed", "Delayed"
        LANDED = "landed", "Landed"
        CANCELLED = "cancelled", "Cancelled"
        DIVERTED = "diverted", "Diverted"

    flight = models.CharField(max_length=16, help_text="Normal form, e.g. BA0118")
    date = models.DateField(help_text="The flight's scheduled date")
    status = models.CharField(max_length=10, choices=Status.choices)
    scheduled = models.DateTimeField()
    estimated = models.DateTimeField(null=True, blank=True)
    actual = models.DateTimeField(null=True, blank=True)
    reported_at = models.DateTimeField(help_text="The update's own time (else when it was received)")
    received_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["flight", "date"], name="flight_status_unique")]

    def __str__(self) -> str:
        return f"{self.flight} {self.date}: {self.status}"

    @property
    def landing(self):
        """Actual, else estimated landing (None when neither is known: nothing moves)."""
        return self.actual or self.estimated


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
