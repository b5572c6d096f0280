"""Lane controller writes: enrolment, revocation, connection state, and the plate-read decision."""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from apps.access.models import BarrierCommand, Device, EnrolmentCode, PlateRead, Visit
from apps.access.selectors import carpark_occupancy
from apps.access.tokens import hash_secret, new_secret
from apps.bookings.models import Booking
from apps.carparks.models import CarPark, Lane
from apps.core import events, plates
from apps.core.services import audit_log_record

ENROLMENT_CODE_TTL = timedelta(hours=24)
COMMAND_TTL = timedelta(seconds=10)


class InvalidEnrolmentCode(Exception):
    pass


class UnknownLane(Exception):
    pass


@dataclass(frozen=True)
class Enrolled:
    device_id: str
    token: str
    carpark: str
    lanes: list[str]


def device_create(*, carpark_code: str, lane_codes: list[str], name: str = "", actor=None) -> tuple[Device, str]:
    """Create a device for lanes of a car park; returns it with a one-time enrolment code (shown once)."""
    carpark = CarPark.objects.filter(code=carpark_code).first()
    if carpark is None:
        raise CarPark.DoesNotExist(f"unknown car park {carpark_code!r}")
    lanes = list(Lane.objects.filter(carpark=carpark, code__in=lane_codes))
    missing = sorted(set(lane_codes) - {lane.code for lane in lanes})
    if missing:
        raise Lane.DoesNotExist(f"unknown lane(s) {', '.join(missing)} at {carpark_code}")
    code = new_secret()
    with transaction.atomic():
        device = Device.objects.create(carpark=carpark, name=name)
        device.lanes.set(lanes)
        EnrolmentCode.objects.create(
            device=device, code_hash=hash_secret(code), expires_at=timezone.now() + ENROLMENT_CODE_TTL
        )
        audit_log_record(
            action="device.create",
            actor=actor,
            actor_label="" if actor else "command line",
            obj=device,
            carpark=carpark,
        )
    return device, code


def device_enrol(*, code: str, serial: str = "", model: str = "") -> Enrolled:
    """Exchange a one-time enrolment code for the device's token (device-protocol.md 1.2)."""
    token = new_secret()
    with transaction.atomic():
        enrolment = (
            EnrolmentCode.objects.select_for_update()
            .select_related("device__carpark")
            .filter(code_hash=hash_secret(code or ""), used_at__isnull=True, expires_at__gt=timezone.now())
            .first()
        )
        if enrolment is None or enrolment.device.revoked_at is not None:
            raise InvalidEnrolmentCode
        enrolment.used_at = timezone.now()
        enrolment.save(update_fields=["used_at"])
        device = enrolment.device
        device.token_hash, device.serial, device.model = hash_secret(token), serial[:100], model[:100]
        device.enrolled_at = timezone.now()
        device.save(update_fields=["token_hash", "serial", "model", "enrolled_at"])
        lanes = list(device.lanes.order_by("code").values_list("code", flat=True))
    return Enrolled(device_id=str(device.id), token=token, carpark=device.carpark.code, lanes=lanes)


def device_revoke(*, device_id: str, actor=None) -> Device:
    with transaction.atomic():
        device = Device.objects.select_for_update().get(pk=device_id)
        if device.revoked_at is None:
            device.revoked_at = timezone.now()
            device.online = False
            device.save(update_fields=["revoked_at", "online"])
            audit_log_record(
                action="device.revoke",
                actor=actor,
                actor_label="" if actor else "command line",
                obj=device,
                carpark=device.carpark,
            )
        events.publish_to_device(device_id=str(device.id), kind="revoked", data={})
    return device


def device_set_online(*, device_id: str, online: bool, firmware: str | None = None) -> None:
    with transaction.atomic():
        fields = {"online": online, "last_seen_at": timezone.now()}
        if firmware is not None:
            fields["firmware"] = firmware[:50]
        Device.objects.filter(pk=device_id).update(**fields)
        device = Device.objects.only("carpark_id").get(pk=device_id)
        events.publish_to_carpark(
            carpark_id=device.carpark_id, kind="device", data={"device": device_id, "online": online}
        )


def _decision(read_id: str, action: str, reason: str, *, match=None, booking=None, command=None) -> dict:
    return {
        "type": "decision",
        "read_id": read_id,
        "action": action,
        "reason": reason,
        "match": match,
        "booking": booking.reference if booking else None,
        "command_id": command.command_id if command else None,
        "expires_at": command.expires_at.isoformat().replace("+00:00", "Z") if command else None,
        "duplicate": False,
    }


def plate_read_decide(
    *,
    device_id: str,
    read_id: str,
    lane_code: str,
    plate: str,
    score: float,
    captured_at: datetime,
    candidates: list | None = None,
    region: str = "",
    vehicle: dict | None = None,
    retransmit: bool = False,
    local_action: str = "",
) -> dict:
    """Record a plate read, decide what the barrier does, apply it to visits; all in one transaction.

    Returns the `decision` frame. The caller sends it only after this returns (i.e. after commit).
    """
    with transaction.atomic():
        previous = (
            PlateRead.objects.filter(device_id=device_id, read_id=read_id).values_list("decision", flat=True).first()
        )
        if previous is not None:
            return previous | {"duplicate": True}
        lane = Lane.objects.select_related("carpark").filter(devices__id=device_id, code=lane_code).first()
        if lane is None:
            raise UnknownLane(lane_code)
        carpark = lane.carpark
        normal, key = plates.normalise(plate), plates.lookalike_key(plate)
        read = PlateRead(
            device_id=device_id,
            lane=lane,
            carpark=carpark,
            read_id=read_id,
            plate_raw=plate[:32],
            plate=normal[:32],
            lookalike_key=key[:32],
            score=score,
            candidates=candidates or [],
            region=region[:16],
            vehicle=vehicle or {},
            retransmit=retransmit,
            local_action=local_action,
            captured_at=captured_at,
        )
        booking = None
        visit_change = None
        if score < float(carpark.min_score):
            action, reason, match = "deny", "low_confidence", None
        elif lane.direction == Lane.Direction.ENTRY:
            early = timedelta(minutes=carpark.early_arrival_min)
            booking = (
                Booking.objects.filter(
                    carpark=carpark,
                    status=Booking.Status.CONFIRMED,
                    vehicles__registration=normal,
                    arrival__lte=captured_at + early,
                    departure__gte=captured_at,
                )
                .distinct()
                .first()
            )
            if booking:
                action, reason, match, visit_change = "open", "booking", "exact", "open"
            else:
                action, reason, match = "deny", "unknown_vehicle", None
        else:
            visit = (
                Visit.objects.select_for_update().filter(carpark=carpark, plate=normal, exited_at__isnull=True).first()
            )
            if visit:
                action, reason, match, visit_change = "open", "departure", "exact", "close"
                booking = visit.booking
            else:
                action, reason, match = "open", "no_visit", None
        command = None
        if action == "open":
            command = BarrierCommand(
                command_id="c-" + secrets.token_hex(6),
                lane=lane,
                device_id=device_id,
                reason=reason,
                expires_at=timezone.now() + COMMAND_TTL,
            )
        read.action, read.reason, read.match, read.booking = action, reason, match or "", booking
        read.decision = _decision(read_id, action, reason, match=match, booking=booking, command=command)
        read.save()
        if command:
            command.read = read
            command.save()
        if visit_change == "open":
            Visit.objects.create(
                carpark=carpark,
                plate=normal,
                lookalike_key=key,
                entry_read=read,
                entry_lane=lane,
                entered_at=captured_at,
                booking=booking,
            )
            Booking.objects.filter(pk=booking.pk).update(status=Booking.Status.ARRIVED, updated_at=timezone.now())
        elif visit_change == "close":
            visit.exit_read, visit.exit_lane, visit.exited_at = read, lane, captured_at
            visit.save(update_fields=["exit_read", "exit_lane", "exited_at"])
            if visit.booking_id:
                Booking.objects.filter(pk=visit.booking_id).update(
                    status=Booking.Status.DEPARTED, updated_at=timezone.now()
                )
        if visit_change:
            events.publish_to_carpark(
                carpark_id=carpark.id,
                kind="occupancy",
                data={"carpark": carpark.code, "occupancy": carpark_occupancy(carpark_id=carpark.id)},
            )
        return read.decision
