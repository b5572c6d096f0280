"""Lane controller reads: device identity, the facts a decision needs, the allow-list, event payloads."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from apps.access.models import Alert, BarrierCommand, BlockedPlate, Device, Permit, Visit
from apps.access.tokens import hash_secret
from apps.bookings.models import Booking, Vehicle


@dataclass(frozen=True)
class DeviceIdentity:
    """What a live connection needs to know about its device, loaded at connect (and again when settings change)."""

    id: str
    carpark_id: int
    carpark_code: str
    lanes: dict[str, str]  # lane code -> direction
    lane_ids: dict[str, int]  # lane code -> Lane id
    settings: dict
    vendor: dict  # Device.settings: vendor mappings (camera id / channel -> lane code)
    token_hash: str = field(repr=False)  # the token's, as loaded: enrolling again replaces it (spec 1.3)


def device_identity(device: Device) -> DeviceIdentity:
    lanes = list(device.lanes.order_by("code"))
    return DeviceIdentity(
        id=str(device.id),
        carpark_id=device.carpark_id,
        carpark_code=device.carpark.code,
        lanes={lane.code: lane.direction for lane in lanes},
        lane_ids={lane.code: lane.id for lane in lanes},
        settings=device.carpark.device_settings(),
        vendor=device.settings or {},
        token_hash=device.token_hash or "",
    )


def device_for_token(*, token: str) -> DeviceIdentity | None:
    """The enrolled, unrevoked device holding `token`, or None."""
    if not token:
        return None
    device = (
        Device.objects.select_related("carpark").filter(token_hash=hash_secret(token), revoked_at__isnull=True).first()
    )
    return device_identity(device) if device is not None else None


def device_identity_by_id(*, device_id: str) -> DeviceIdentity | None:
    device = Device.objects.select_related("carpark").filter(pk=device_id, revoked_at__isnull=True).first()
    return device_identity(device) if device is not None else None


def device_token_is_current(*, device_id: str, token_hash: str) -> bool:
    """Whether `token_hash` is still the unrevoked device's token (not rotated by enrolling again)."""
    return Device.objects.filter(pk=device_id, token_hash=token_hash, revoked_at__isnull=True).exists()


def device_is_active(*, device_id: str) -> bool:
    return Device.objects.filter(pk=device_id, revoked_at__isnull=True).exists()


def carpark_occupancy(*, carpark_id: int) -> int:
    return Visit.objects.filter(carpark_id=carpark_id, exited_at__isnull=True).count()


# --- Offline allow-list ----------------------------------------------------------------------------------------


def allowlist_content(*, carpark_id: int, now: datetime | None = None) -> tuple[list[dict], list[str]]:
    """Permits and confirmed bookings whose window [arrival - early_arrival, departure] meets the next 24 hours,
    one entry per plate; and the block list's plates (device-protocol.md 5)."""
    from apps.carparks.models import CarPark

    now = now or timezone.now()
    horizon = now + timedelta(hours=24)
    carpark = CarPark.objects.only("early_arrival_min").get(pk=carpark_id)
    early = timedelta(minutes=carpark.early_arrival_min)
    entries = [
        _entry(row["plate"], row["lookalike_key"], "permit", row["valid_from"], row["valid_until"])
        for row in Permit.objects.filter(carpark_id=carpark_id, valid_from__lte=horizon, valid_until__gte=now).values(
            "plate", "lookalike_key", "valid_from", "valid_until"
        )
    ]
    vehicles = Vehicle.objects.filter(
        booking__carpark_id=carpark_id,
        booking__status=Booking.Status.CONFIRMED,
        booking__arrival__lte=horizon + early,
        booking__departure__gte=now,
    ).values("registration", "lookalike_key", "booking__arrival", "booking__departure")
    entries += [
        _entry(v["registration"], v["lookalike_key"], "booking", v["booking__arrival"] - early, v["booking__departure"])
        for v in vehicles
    ]
    entries.sort(key=lambda e: (e["plate"], e["kind"], e["valid_from"], e["valid_until"]))
    blocklist = sorted(set(BlockedPlate.objects.filter(carpark_id=carpark_id).values_list("plate", flat=True)))
    return entries, blocklist


def _entry(plate: str, key: str, kind: str, valid_from: datetime, valid_until: datetime) -> dict:
    return {"plate": plate, "key": key, "kind": kind, "valid_from": _iso(valid_from), "valid_until": _iso(valid_until)}


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(timezone.UTC).isoformat().replace("+00:00", "Z")


# --- Event payloads (docs/contracts-internal.md) -----------------------------------------------------------------


def device_event_data(device: Device) -> dict:
    return {
        "device": str(device.id),
        "name": device.name or str(device.id),
        "online": device.online,
        "lanes": list(device.lanes.order_by("code").values_list("code", flat=True)),
        "barriers": device.barriers or {},
        "clock_offset_s": device.clock_offset_s,
    }


def alert_event_data(alert: Alert) -> dict:
    return {
        "id": alert.id,
        "carpark": alert.carpark.code,
        "lane": alert.lane.code if alert.lane_id else None,
        "plate": alert.plate,
        "reason": alert.reason,
        "detail": alert.detail,
        "created_at": _iso(alert.created_at),
        "acknowledged_by": alert.acknowledged_by.get_username() if alert.acknowledged_by_id else None,
    }


def visit_event_data(visit: Visit, carpark, reference: str | None = None) -> dict:
    booking = reference
    if visit.booking_id and booking is None:
        booking = Booking.objects.filter(pk=visit.booking_id).values_list("reference", flat=True).first()
    return {
        "id": visit.id,
        "carpark": carpark.code,
        "plate": visit.plate,
        "entered_at": _iso(visit.entered_at),
        "exited_at": _iso(visit.exited_at),
        "booking": booking,
    }


def command_event_data(command: BarrierCommand, lane) -> dict:
    return {
        "command_id": command.command_id,
        "lane": lane.code,
        "status": command.status,
        "detail": command.detail,
        "issued_by": command.issued_by.get_username() if command.issued_by_id else None,
        "reason": command.reason,
    }


def alerts_open(*, carpark_ids: list[int], limit: int = 50) -> list[dict]:
    """Unacknowledged alerts, newest first, for dashboards."""
    alerts = (
        Alert.objects.filter(carpark_id__in=carpark_ids, acknowledged_at__isnull=True)
        .select_related("carpark", "lane", "acknowledged_by")
        .order_by("-created_at")[:limit]
    )
    return [alert_event_data(a) for a in alerts]


def devices_of_carparks(*, carpark_ids: list[int]) -> list[dict]:
    """Lane controllers and their online state, for dashboards."""
    devices = Device.objects.filter(carpark_id__in=carpark_ids, revoked_at__isnull=True).order_by("name")
    return [device_event_data(d) for d in devices.prefetch_related("lanes")]
