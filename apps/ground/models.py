from django.conf import settings
from django.db import models


class FeedToken(models.Model):
    """A flight-status feed's token (`manage.py create_feed_token`). Only a SHA-256 hash is kept; shown once."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, help_text="First characters, to recognise a token")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… {self.name}"


class Task(models.Model):
    """A meet-and-greet job on one booking's car: collect it at the terminal, park it, return it to the customer.

    One task of each kind per booking (apps.ground.tasks makes them from the booking). A return task is due when the
    customer can be at the car: `Booking.return_ready_at` (landing + baggage allowance) once the flight is known,
    else the booked departure; read through apps.ground.selectors, so it moves live with the flight."""

    class Kind(models.TextChoices):
        COLLECT = "collect", "Collect at the terminal"
        PARK = "park", "Park"
        RETURN = "return", "Return to the customer"

    class State(models.TextChoices):
        OPEN = "open", "Open"
        ASSIGNED = "assigned", "Assigned"
        STARTED = "started", "Started"
        DONE = "done", "Done"
        PROBLEM = "problem", "Problem"

    booking = models.ForeignKey("bookings.Booking", related_name="ground_tasks", on_delete=models.CASCADE)
    carpark = models.ForeignKey("carparks.CarPark", related_name="+", on_delete=models.CASCADE)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    state = models.CharField(max_length=8, choices=State.choices, default=State.OPEN)
    driver = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, related_name="ground_tasks", on_delete=models.SET_NULL
    )
    due_at = models.DateTimeField(help_text="Collect and park: from the booking; return: see the class")
    place = models.CharField(max_length=100, blank=True, help_text="Where: the terminal, the car park")
    key_tag = models.ForeignKey(
        "KeyTag", null=True, blank=True, related_name="tasks", on_delete=models.SET_NULL, db_index=False
    )
    note = models.TextField(blank=True, help_text="The driver's word on a problem")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    at_risk_at = models.DateTimeField(null=True, blank=True, help_text="When staff were told no driver had it")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["booking", "kind"], name="one_task_per_kind")]
        indexes = [models.Index(fields=["carpark", "state", "due_at"], name="task_board")]

    def __str__(self) -> str:
        return f"{self.kind} {self.booking_id} ({self.state})"


class KeyTag(models.Model):
    """A numbered key tag of one car park. One holder at a time: a slot of the key safe, or a driver."""

    carpark = models.ForeignKey("carparks.CarPark", related_name="+", on_delete=models.CASCADE)
    number = models.CharField(max_length=16)
    booking = models.ForeignKey(
        "bookings.Booking", null=True, blank=True, related_name="key_tags", on_delete=models.SET_NULL
    )
    slot = models.CharField(max_length=16, blank=True, help_text="Key safe slot when in the safe")
    driver = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, related_name="key_tags", on_delete=models.PROTECT
    )
    moved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["carpark", "number"], name="key_tag_number_unique"),
            # one holder at a time: a safe slot or a driver, never both
            models.CheckConstraint(
                condition=~(~models.Q(slot="") & models.Q(driver__isnull=False)),
                name="key_tag_one_holder",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.carpark_id} #{self.number}"

    @property
    def holder(self) -> str:
        if self.driver_id:
            return f"driver {self.driver}"
        return f"safe slot {self.slot}" if self.slot else "not issued"


class KeyMove(models.Model):
    """Every move of a key tag, from one holder to another (the audit trail of the key safe)."""

    tag = models.ForeignKey(KeyTag, related_name="moves", on_delete=models.CASCADE)
    from_holder = models.CharField(max_length=80)
    to_holder = models.CharField(max_length=80)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, related_name="+", on_delete=models.SET_NULL)
    task = models.ForeignKey(Task, null=True, blank=True, related_name="+", on_delete=models.SET_NULL)
    at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.tag}: {self.from_holder} -> {self.to_holder}"


class ConditionPhoto(models.Model):
    """A photo of a car's condition at a hand-over, resized on the server, kept through Django's storage API.

    It goes with the booking (task CASCADE) and its file with it (apps.ground.receivers)."""

    class Angle(models.TextChoices):
        FRONT = "front", "Front"
        REAR = "rear", "Rear"
        LEFT = "left", "Left side"
        RIGHT = "right", "Right side"
        INTERIOR = "interior", "Interior"
        DAMAGE = "damage", "Damage close-up"

    REQUIRED_ANGLES = ("front", "rear", "left", "right")

    task = models.ForeignKey(Task, related_name="photos", on_delete=models.CASCADE)
    angle = models.CharField(max_length=8, choices=Angle.choices)
    image = models.ImageField(upload_to="condition/%Y/%m/")
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    taken_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, related_name="+", on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.task_id} {self.angle}"
