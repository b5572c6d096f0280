"""Lane controllers: enrolment codes and tokens, lanes, revocation, connections and heartbeats, going offline."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from apps.access import selectors
from apps.access.models import (
    Device,
    EnrolmentCode,
)
from apps.access.services.allowlist import device_settings_changed
from apps.access.services.common import (
    ENROLMENT_CODE_TTL,
    LAST_SEEN_EVERY,
    OFFLINE_AFTER,
    DeviceRevoked,
    InvalidEnrolmentCode,
    iso,
)
from apps.access.tokens import hash_secret, new_secret
from apps.carparks.models import CarPark, Lane
from apps.core import events
from apps.core.services import audit_log_record

# device_heartbeat's answers: the connection carries on, or why it must close
ACTIVE, REVOKED, REPLACED = "active", "revoked", "replaced"


@dataclass(frozen=True)
class EnrolmentCodeIssued:
    """A one-time enrolment code, in clear: shown once to staff, never stored or logged (only its hash is kept)."""

    device_id: str
    code: str
    expires_at: datetime


@dataclass(frozen=True)
class Enrolled:
    device_id: str
    token: str
    carpark: str
    lanes: list[str]


# --- Devices ---------------------------------------------------------------------------------------------------


def device_create(
    *, carpark_code: str, lane_codes: list[str], name: str = "", settings: dict | None = None, actor=None
) -> tuple[Device, EnrolmentCodeIssued]:
    """Create a device for lanes of a car park, with its vendor mapping (`settings`, device-protocol.md 7); returns it
    with its one-time enrolment code (shown once)."""
    carpark = CarPark.objects.filter(code=carpark_code).first()
    if carpark is None:
        raise CarPark.DoesNotExist(f"unknown car park {carpark_code!r}")
    lanes = _lanes_of(carpark, lane_codes)
    with transaction.atomic():
        device = Device.objects.create(carpark=carpark, name=name, settings=settings or {})
        device.lanes.set(lanes)
        _audit_device("device.create", device, actor)
        issued = device_enrolment_code_issue(device_id=str(device.id), actor=actor)
    return device, issued


def _lanes_of(carpark: CarPark, lane_codes: list[str]) -> list[Lane]:
    lanes = list(Lane.objects.filter(carpark=carpark, code__in=lane_codes))
    missing = sorted(set(lane_codes) - {lane.code for lane in lanes})
    if missing:
        raise Lane.DoesNotExist(f"unknown lane(s) {', '.join(missing)} at {carpark.code}")
    return lanes


def device_enrolment_code_issue(*, device_id: str, actor=None) -> EnrolmentCodeIssued:
    """A new one-time enrolment code (valid 24 h) for an unrevoked device: the first was lost or expired, or the
    controller is replaced (enrolling again rotates the token, device-protocol.md 1.3). The device's earlier unused
    codes stop working. Raises DeviceRevoked for a revoked device."""
    code = new_secret()
    with transaction.atomic():
        device = Device.objects.select_for_update().select_related("carpark").get(pk=device_id)
        if device.revoked_at is not None:
            raise DeviceRevoked(str(device.id))
        now = timezone.now()
        device.enrolment_codes.filter(used_at__isnull=True, expires_at__gt=now).update(expires_at=now)
        enrolment = EnrolmentCode.objects.create(
            device=device, code_hash=hash_secret(code), expires_at=now + ENROLMENT_CODE_TTL
        )
        _audit_device("device.enrolment_code", device, actor, data={"expires_at": iso(enrolment.expires_at)})
    return EnrolmentCodeIssued(device_id=str(device.id), code=code, expires_at=enrolment.expires_at)


def device_update(
    *, device_id: str, name: str, lane_codes: list[str], settings: dict | None = None, actor=None
) -> Device:
    """Staff change a device's name, lanes (of its own car park) or vendor mapping. Audited when something changed,
    and then its live connection gets a new `welcome` with its lanes (device_settings_changed)."""
    with transaction.atomic():
        device = Device.objects.select_for_update().select_related("carpark").get(pk=device_id)
        lanes = _lanes_of(device.carpark, lane_codes)
        before = (device.name, device.settings, sorted(device.lanes.values_list("code", flat=True)))
        after = (name, settings or {}, sorted(lane.code for lane in lanes))
        if before == after:
            return device
        device.name, device.settings = name, settings or {}
        device.save(update_fields=["name", "settings"])
        device.lanes.set(lanes)
        _audit_device("device.update", device, actor, data={"name": name, "lanes": after[2], "settings": after[1]})
        device_settings_changed(device_id=str(device.id))
    return device


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
        if device.token_hash:
            # Enrolling again rotates the token (spec 1.3): a connection on the old one closes, wherever it is held.
            events.publish_to_device(device_id=str(device.id), kind="token_rotated", data={})
        device.token_hash, device.serial, device.model = hash_secret(token), serial[:100], model[:100]
        device.enrolled_at = timezone.now()
        device.save(update_fields=["token_hash", "serial", "model", "enrolled_at"])
        lanes = list(device.lanes.order_by("code").values_list("code", flat=True))
    return Enrolled(device_id=str(device.id), token=token, carpark=device.carpark.code, lanes=lanes)


def device_revoke(*, device_id: str, actor=None) -> Device:
    """Revoke a device: its token stops working and its live connection, wherever it is held, closes with 4401."""
    with transaction.atomic():
        device = Device.objects.select_for_update().get(pk=device_id)
        if device.revoked_at is None:
            device.revoked_at = timezone.now()
            device.online = False
            device.save(update_fields=["revoked_at", "online"])
            _audit_device("device.revoke", device, actor)
            _publish_device(device)
        events.publish_to_device(device_id=str(device.id), kind="revoked", data={})
    return device


def _audit_device(action: str, device: Device, actor, data: dict | None = None) -> None:
    """A device's audit entry: by the staff member, or else from the command line (enrol_device, revoke_device)."""
    audit_log_record(
        action=action,
        actor=actor,
        actor_label="" if actor else "command line",
        obj=device,
        carpark=device.carpark,
        data=data,
    )


def _publish_device(device: Device) -> None:
    events.publish_to_carpark(carpark_id=device.carpark_id, kind="device", data=selectors.device_event_data(device))


def device_connected(*, device_id: str, connection_id: str, firmware: str | None = None) -> None:
    """A `hello` on a live connection: the device is online, held by `connection_id`."""
    with transaction.atomic():
        device = Device.objects.select_for_update().get(pk=device_id)
        device.online, device.connection_id, device.last_seen_at = True, connection_id, timezone.now()
        fields = ["online", "connection_id", "last_seen_at"]
        if firmware is not None:
            device.firmware = firmware[:50]
            fields.append("firmware")
        device.save(update_fields=fields)
        _publish_device(device)


def device_disconnected(*, device_id: str, connection_id: str) -> bool:
    """The connection `connection_id` closed or fell silent: offline, unless a newer connection holds the device."""
    with transaction.atomic():
        device = Device.objects.select_for_update().filter(pk=device_id, connection_id=connection_id).first()
        if device is None or not device.online:
            return False
        device.online = False
        device.save(update_fields=["online"])
        _publish_device(device)
    return True


def device_heartbeat(*, device_id: str, connection_id: str, token_hash: str, barriers: dict[str, str]) -> str:
    """A heartbeat on a connection opened with the token of `token_hash`: record the barrier states and that the
    device is alive (ACTIVE), unless it has been revoked (REVOKED) or enrolled again since, which replaced its token
    (REPLACED). Nothing is recorded then: the connection must close."""
    with transaction.atomic():
        # FOR NO KEY UPDATE: the device's reads being decided meanwhile (their foreign key's KEY SHARE) do not wait
        device = Device.objects.select_for_update(no_key=True).filter(pk=device_id).first()
        if device is None or device.revoked_at is not None:
            return REVOKED
        if device.token_hash != token_hash:
            return REPLACED
        changed = not device.online or device.connection_id != connection_id or device.barriers != barriers
        now = timezone.now()
        if not changed and device.last_seen_at and now - device.last_seen_at < LAST_SEEN_EVERY:
            return ACTIVE  # nothing new: the row is not written again
        device.online, device.connection_id, device.last_seen_at = True, connection_id, now
        device.barriers = barriers
        device.save(update_fields=["online", "connection_id", "last_seen_at", "barriers"])
        if changed:
            _publish_device(device)
    return ACTIVE


def devices_sweep_offline(*, now: datetime | None = None) -> int:
    """Devices marked online whose process died without saying so (no heartbeat for 60 s + slack): offline."""
    cutoff = (now or timezone.now()) - OFFLINE_AFTER - timedelta(seconds=30)
    count = 0
    with transaction.atomic():
        for device in Device.objects.select_for_update(skip_locked=True).filter(online=True, last_seen_at__lt=cutoff):
            device.online = False
            device.save(update_fields=["online"])
            _publish_device(device)
            count += 1
    return count
