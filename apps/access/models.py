"""Lane controllers and what they see: devices, reads, decisions, barrier commands, visits, permits, block list."""

import uuid

from django.conf import settings
from django.db import models

from apps.access.vocabulary import EARLIEST_TIME, MOST_AHEAD


class Device(models.Model):
    """A lane controller (ANPR cameras + barrier relay) serving one or more lanes of one car park."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, blank=True)
    carpark = models.ForeignKey("carparks.CarPark", related_name="devices", on_delete=models.PROTECT)
    lanes = models.ManyToManyField("carparks.Lane", related_name="devices")
    token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True)
    serial = models.CharField(max_length=100, blank=True)
    model = models.CharField(max_length=100, blank=True)
    firmware = models.CharField(max_length=50, blank=True)
    settings = models.JSONField(
        default=dict, blank=True, help_text="Vendor mapping, e.g. {'cameras': {'cam1': 'N-IN'}}"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    enrolled_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    online = models.BooleanField(default=False)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    barriers = models.JSONField(default=dict, blank=True, help_text="Last reported barrier state per lane")
    connection_id = models.CharField(
        max_length=32, blank=True, help_text="The live connection that set `online`: an older one's close is ignored"
    )
    clock_offset_s = models.FloatField(
        null=True,
        blank=True,
        help_text="The device's clock minus the server's, as last measured (apps/access/clock.py)",
    )
    clock_measured_at = models.DateTimeField(null=True, blank=True)
    clock_alerted_at = models.DateTimeField(
        null=True, blank=True, help_text="Staff were alerted that its clock is off; cleared once it is right again"
    )

    def __str__(self) -> str:
        return self.name or str(self.id)


class EnrolmentCode(models.Model):
    """A one-time code that a controller exchanges for its token (device-protocol.md 1). Stored hashed."""

    device = models.ForeignKey(Device, related_name="enrolment_codes", on_delete=models.CASCADE)
    code_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"enrolment of {self.device_id} (expires {self.expires_at:%Y-%m-%d %H:%M})"


class Permit(models.Model):
    """A season ticket or staff pass: opens entry lanes while valid."""

    carpark = models.ForeignKey("carparks.CarPark", related_name="permits", on_delete=models.CASCADE)
    holder = models.CharField(max_length=200)
    plate_raw = models.CharField(max_length=20)
    plate = models.CharField(max_length=20, db_index=True)
    lookalike_key = models.CharField(max_length=20, db_index=True)
    valid_from = models.DateTimeField()
    valid_until = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.plate} ({self.holder})"


class BlockedPlate(models.Model):
    carpark = models.ForeignKey("carparks.CarPark", related_name="blocked_plates", on_delete=models.CASCADE)
    plate_raw = models.CharField(max_length=20)
    plate = models.CharField(max_length=20, db_index=True)
    lookalike_key = models.CharField(max_length=20, db_index=True)
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.plate


class PlateRead(models.Model):
    """One plate read from a lane controller or camera, with the decision it got. Kept to explain every barrier."""

    class Action(models.TextChoices):
        OPEN = "open", "Open"
        DENY = "deny", "Deny"
        NONE = "none", "None (recorded)"

    # Every read is written on the barrier's path: no index that another one already covers (device: the unique
    # (device, read_id); lane: (lane, plate, captured_at); carpark: (carpark, received_at)), none for LIKE.
    device = models.ForeignKey(Device, related_name="reads", on_delete=models.PROTECT, db_index=False)
    lane = models.ForeignKey("carparks.Lane", related_name="reads", on_delete=models.PROTECT, db_index=False)
    carpark = models.ForeignKey("carparks.CarPark", related_name="reads", on_delete=models.PROTECT, db_index=False)
    read_id = models.CharField(max_length=64)
    plate_raw = models.CharField(max_length=32)
    plate = models.CharField(max_length=32)
    lookalike_key = models.CharField(max_length=32)
    score = models.FloatField()
    candidates = models.JSONField(default=list, blank=True)
    region = models.CharField(max_length=16, blank=True)
    vehicle = models.JSONField(default=dict, blank=True)
    retransmit = models.BooleanField(default=False)
    local_action = models.CharField(max_length=4, blank=True)
    captured_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)
    action = models.CharField(max_length=4, choices=Action.choices)
    reason = models.CharField(max_length=32)
    match = models.CharField(max_length=10, blank=True)
    # booking and permit: indexed only where set (Meta), for staff search and a permit's deletion.
    booking = models.ForeignKey(
        "bookings.Booking", null=True, blank=True, related_name="reads", on_delete=models.SET_NULL, db_index=False
    )
    permit = models.ForeignKey(
        Permit, null=True, blank=True, related_name="reads", on_delete=models.SET_NULL, db_index=False
    )
    decision = models.JSONField(help_text="The decision frame sent, replayed for a duplicate read_id")
    unpaired_exit = models.BooleanField(
        default=False, help_text="An exit applied to visits that closed none (yet): a late entry may pair with it"
    )
    clock_offset_s = models.FloatField(
        null=True,
        blank=True,
        help_text="Set when the device's clock was wrong: its captured_at minus the server's receipt time, at which "
        "the read was decided (captured_at)",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "read_id"], name="read_id_unique_per_device"),
            # The window device_gateway.codec.parse_time allows (apps.access.vocabulary), kept by the
            # database too: one year-10000 row used to break every page listing reads.
            models.CheckConstraint(
                condition=models.Q(captured_at__gte=EARLIEST_TIME)
                & models.Q(captured_at__lte=models.F("received_at") + MOST_AHEAD),
                name="read_captured_at_sane",
            ),
        ]
        indexes = [
            models.Index(fields=["lane", "plate", "captured_at"]),
            models.Index(fields=["carpark", "received_at"]),
            # staff search (a plate's look-alike key finds the plate too) and a late entry's unpaired exit
            models.Index(fields=["carpark", "lookalike_key", "captured_at"], name="read_key_captured"),
            # staff search of a booking's reads, whatever plate they were matched by
            models.Index(fields=["booking"], condition=models.Q(booking__isnull=False), name="read_booking"),
            models.Index(fields=["permit"], condition=models.Q(permit__isnull=False), name="read_permit"),
            # a late entry's exit read under a misread plate (its plate among the candidates): few rows, few writes
            models.Index(
                fields=["carpark", "captured_at"], condition=models.Q(unpaired_exit=True), name="read_unpaired_exit"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.read_id} {self.plate} -> {self.action}/{self.reason}"


class BarrierCommand(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired (controller)"
        TIMED_OUT = "timed_out", "Timed out"

    # One per open, on the barrier's path: results are matched by command_id (a constraint, no LIKE index); no index
    # for lane and device (neither is ever deleted with commands: PROTECT), issued_by only where set (Meta).
    command_id = models.CharField(max_length=32)
    lane = models.ForeignKey("carparks.Lane", related_name="commands", on_delete=models.PROTECT, db_index=False)
    device = models.ForeignKey(Device, related_name="commands", on_delete=models.PROTECT, db_index=False)
    read = models.OneToOneField(PlateRead, null=True, blank=True, related_name="command", on_delete=models.SET_NULL)
    action = models.CharField(max_length=8, default="open")
    reason = models.CharField(max_length=200)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    detail = models.CharField(max_length=500, blank=True)
    result_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # The name unique=True gave it (kept, so that the constraint was not rebuilt).
        constraints = [models.UniqueConstraint(fields=["command_id"], name="access_barriercommand_command_id_key")]
        indexes = [  # the time-out sweep's look-up; a plain status index would be written for every command
            models.Index(fields=["expires_at"], condition=models.Q(status="pending"), name="command_pending_expiry"),
            models.Index(fields=["issued_by"], condition=models.Q(issued_by__isnull=False), name="command_issued_by"),
        ]

    def __str__(self) -> str:
        return f"{self.command_id} {self.lane} {self.status}"


class Visit(models.Model):
    """A vehicle on site: an entry paired with the first later exit (by captured_at). Occupancy = open visits."""

    # Written on the barrier's path: carpark is covered by visit_key_entered (so is the look-alike key, which every
    # query asks for with a car park, staff search too: a plate's key finds the plate); plate only while open (Meta),
    # none for LIKE; entry_lane none (a lane is deleted only without reads); exit_lane and permit only where set.
    carpark = models.ForeignKey("carparks.CarPark", related_name="visits", on_delete=models.PROTECT, db_index=False)
    plate = models.CharField(max_length=32)
    lookalike_key = models.CharField(max_length=32)
    entry_read = models.OneToOneField(
        PlateRead, null=True, blank=True, related_name="entry_visit", on_delete=models.SET_NULL
    )
    exit_read = models.OneToOneField(
        PlateRead, null=True, blank=True, related_name="exit_visit", on_delete=models.SET_NULL
    )
    entry_lane = models.ForeignKey(
        "carparks.Lane", null=True, blank=True, related_name="+", on_delete=models.SET_NULL, db_index=False
    )
    exit_lane = models.ForeignKey(
        "carparks.Lane", null=True, blank=True, related_name="+", on_delete=models.SET_NULL, db_index=False
    )
    entered_at = models.DateTimeField()
    exited_at = models.DateTimeField(null=True, blank=True)
    booking = models.ForeignKey(
        "bookings.Booking", null=True, blank=True, related_name="visits", on_delete=models.SET_NULL
    )
    permit = models.ForeignKey(
        Permit, null=True, blank=True, related_name="visits", on_delete=models.SET_NULL, db_index=False
    )
    closed_reason = models.CharField(max_length=200, blank=True, help_text="Why it was closed without an exit read")
    overstay_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Minutes past the booking's departure + grace at exit (overstay)"
    )
    charge_note = models.CharField(
        max_length=200,
        blank=True,
        default="",
        db_default="",  # raw inserts (the one-statement decision, seeded history) too
        help_text="Why an exit after the booked departure was not charged (late flight)",
    )
    held_at = models.DateTimeField(
        null=True, blank=True, help_text="Held at the exit lane `exit_lane` for overstay (policy `hold`) since"
    )

    class Meta:
        indexes = [
            models.Index(fields=["carpark", "lookalike_key", "entered_at"], name="visit_key_entered"),
            models.Index(fields=["exit_lane"], condition=models.Q(exit_lane__isnull=False), name="visit_exit_lane"),
            models.Index(fields=["permit"], condition=models.Q(permit__isnull=False), name="visit_permit"),
            models.Index(
                fields=["carpark", "plate"], condition=models.Q(exited_at__isnull=True), name="open_visit_plate"
            ),
            models.Index(
                fields=["carpark", "lookalike_key"], condition=models.Q(exited_at__isnull=True), name="open_visit_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plate} {self.entered_at:%Y-%m-%d %H:%M}"


class Alert(models.Model):
    """Something at a lane that staff should look at (a denied plate, a car with no visit, an overstay...)."""

    # Raised on the barrier's path for every unknown vehicle: carpark and lane are covered by the Meta indexes,
    # acknowledged_by is indexed only where set.
    carpark = models.ForeignKey("carparks.CarPark", related_name="alerts", on_delete=models.CASCADE, db_index=False)
    lane = models.ForeignKey(
        "carparks.Lane", null=True, blank=True, related_name="alerts", on_delete=models.SET_NULL, db_index=False
    )
    plate = models.CharField(max_length=32, blank=True)
    reason = models.CharField(max_length=32)
    detail = models.CharField(max_length=200, blank=True, default="", db_default="")  # raw inserts (bench) too
    read = models.ForeignKey(PlateRead, null=True, blank=True, related_name="alerts", on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, related_name="+", on_delete=models.SET_NULL, db_index=False
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["lane", "plate", "created_at"]),
            models.Index(fields=["carpark", "created_at"]),
            models.Index(
                fields=["acknowledged_by"],
                condition=models.Q(acknowledged_by__isnull=False),
                name="alert_acknowledged_by",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reason} {self.plate} at {self.lane or self.carpark}"


class AllowlistState(models.Model):
    """The version of a car park's offline allow-list (device-protocol.md 5): bumped when its content changes."""

    carpark = models.OneToOneField("carparks.CarPark", related_name="+", on_delete=models.CASCADE)
    version = models.PositiveIntegerField(default=0)
    digest = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"allow-list v{self.version} of {self.carpark_id}"


class UnmappedRead(models.Model):
    """A vendor camera's read (device-protocol.md 7) whose camera id or channel maps to no lane of its device. Kept,
    undecided (the camera was answered 202), until staff map the camera; then decided like any read that arrived
    that late (apps/access/cameras.py). Kept afterwards, with `decided_at`, to explain what happened."""

    device = models.ForeignKey(Device, related_name="unmapped_reads", on_delete=models.CASCADE, db_index=False)
    camera = models.CharField(max_length=64, help_text="Plate Recognizer camera_id or Hikvision channelID")
    read_id = models.CharField(max_length=64)
    plate = models.CharField(max_length=32, help_text="As the camera read it")
    score = models.FloatField()
    captured_at = models.DateTimeField()
    candidates = models.JSONField(default=list, blank=True)
    region = models.CharField(max_length=16, blank=True)
    vehicle = models.JSONField(null=True, blank=True)
    retransmit = models.BooleanField(default=False)
    received_at = models.DateTimeField(auto_now_add=True)
    alert = models.ForeignKey(Alert, null=True, blank=True, related_name="+", on_delete=models.SET_NULL)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["device", "read_id"], name="unmapped_read_id_unique")]
        indexes = [  # a camera's reads still waiting for a lane
            models.Index(
                fields=["device", "camera", "captured_at"],
                condition=models.Q(decided_at__isnull=True),
                name="unmapped_read_waiting",
            )
        ]

    def __str__(self) -> str:
        return f"{self.read_id} {self.plate} from camera {self.camera} (unmapped)"
