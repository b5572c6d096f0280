from dataclasses import dataclass

from apps.access.models import Device, Visit
from apps.access.tokens import hash_secret


@dataclass(frozen=True)
class DeviceIdentity:
    """What a live connection needs to know about its device, loaded once at connect."""

    id: str
    carpark_id: int
    carpark_code: str
    lanes: dict[str, str]  # lane code -> direction
    settings: dict


def device_for_token(*, token: str) -> DeviceIdentity | None:
    """The enrolled, unrevoked device holding `token`, or None."""
    if not token:
        return None
    device = (
        Device.objects.select_related("carpark").filter(token_hash=hash_secret(token), revoked_at__isnull=True).first()
    )
    if device is None:
        return None
    return DeviceIdentity(
        id=str(device.id),
        carpark_id=device.carpark_id,
        carpark_code=device.carpark.code,
        lanes={lane.code: lane.direction for lane in device.lanes.order_by("code")},
        settings=device.carpark.device_settings(),
    )


def device_is_active(*, device_id: str) -> bool:
    return Device.objects.filter(pk=device_id, revoked_at__isnull=True).exists()


def carpark_occupancy(*, carpark_id: int) -> int:
    return Visit.objects.filter(carpark_id=carpark_id, exited_at__isnull=True).count()
