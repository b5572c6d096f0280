"""The offline allow-list and block list pushed to controllers, permits and blocked plates, and settings changes that
send controllers a new welcome."""

import hashlib
import json
from dataclasses import dataclass

from django.core.cache import cache
from django.db import transaction

from apps.access import selectors
from apps.access.models import (
    AllowlistState,
    BlockedPlate,
    Device,
    Permit,
)
from apps.access.services.common import iso, log
from apps.core import events, plates
from apps.core.services import audit_log_record

# --- Offline allow-list (device-protocol.md 5) -----------------------------------------------------------------


@dataclass(frozen=True)
class Allowlist:
    version: int
    entries: list[dict]
    blocklist: list[str]

    def frames(self) -> list[dict]:
        return [
            {"type": "allowlist", "version": self.version, "entries": self.entries},
            {"type": "blocklist", "plates": self.blocklist},
        ]


def allowlist_refresh(*, carpark_id: int) -> Allowlist:
    """The car park's current allow-list and block list; when they changed, a new version is pushed to its devices."""
    entries, blocklist = selectors.allowlist_content(carpark_id=carpark_id)
    digest = hashlib.sha256(json.dumps([entries, blocklist], sort_keys=True).encode()).hexdigest()
    with transaction.atomic():
        state, _ = AllowlistState.objects.select_for_update().get_or_create(carpark_id=carpark_id)
        if state.digest != digest:
            state.version, state.digest = state.version + 1, digest
            state.save(update_fields=["version", "digest", "updated_at"])
            for device_id in Device.objects.filter(carpark_id=carpark_id, revoked_at__isnull=True).values_list(
                "id", flat=True
            ):
                events.publish_to_device(device_id=str(device_id), kind="allowlist", data={"version": state.version})
    return Allowlist(version=state.version, entries=entries, blocklist=blocklist)


# Content per (car park, version), in Django's cache (Redis: shared by every process): the connections of one car
# park share one computation (the query reads every confirmed booking in the 24-hour window). A new version, or an
# hour, computes it afresh.
ALLOWLIST_CACHE_S = 3600


def allowlist_current(*, carpark_id: int) -> Allowlist:
    """The allow-list at its current version, for a connection (after `welcome`, or told of a new version).

    Versions are made by `allowlist_refresh` (jobs on booking, permit and block-list changes, and every 5 minutes);
    a car park without one yet gets its first here."""
    version = AllowlistState.objects.filter(carpark_id=carpark_id).values_list("version", flat=True).first()
    if version is None:
        allowlist = allowlist_refresh(carpark_id=carpark_id)
        version = allowlist.version
        _cached(lambda: cache.set(f"allowlist:{carpark_id}:{version}", allowlist, ALLOWLIST_CACHE_S))
        return allowlist

    def compute() -> Allowlist:
        entries, blocklist = selectors.allowlist_content(carpark_id=carpark_id)
        return Allowlist(version=version, entries=entries, blocklist=blocklist)

    cached = _cached(lambda: cache.get_or_set(f"allowlist:{carpark_id}:{version}", compute, ALLOWLIST_CACHE_S))
    return cached if cached is not None else compute()


def _cached(operation):
    """The cache is only a saving: with Redis away, connections still get their allow-list, computed afresh."""
    try:
        return operation()
    except Exception:  # the cache backend's own errors (redis-py's, for Redis), whatever they are
        log.warning("allow-list cache unavailable; computing it afresh", exc_info=True)
        return None


def carpark_settings_changed(*, carpark_id: int) -> None:
    """Staff changed a car park's lane policies: connected controllers get a new `welcome` (device-protocol.md 2)."""
    for device_id in Device.objects.filter(carpark_id=carpark_id, revoked_at__isnull=True).values_list("id", flat=True):
        events.publish_to_device(device_id=str(device_id), kind="welcome", data={})


def device_settings_changed(*, device_id: str) -> None:
    """Staff changed a device's lanes, name or vendor settings: its live connection gets a new `welcome` with its
    current lanes (device-protocol.md 2), after commit."""
    if Device.objects.filter(pk=device_id, revoked_at__isnull=True).exists():
        events.publish_to_device(device_id=str(device_id), kind="welcome", data={})


# --- Permits and the block list (device-protocol.md 3: plates are matched by normal form and look-alike key) -----


def _plate_of(plate_raw: str) -> tuple[str, str, str]:
    """(raw as typed, normal form, look-alike key); ValueError for a plate without letters or digits."""
    raw = (plate_raw or "").strip()
    plate = plates.normalise(raw)
    if not plate:
        raise ValueError("a plate has letters or digits, e.g. AB12 CDE")
    return raw, plate, plates.lookalike_key(plate)


def permit_save(*, permit: Permit, actor=None) -> Permit:
    """Create or change a permit from its plate as written (`plate_raw`): its normal form and look-alike key are
    derived here. Raises ValueError for a plate without letters or digits, or a validity that ends before it starts.
    The car park's offline allow-list follows (apps.access.receivers)."""
    if permit.valid_until <= permit.valid_from:
        raise ValueError("a permit's valid_until must be after its valid_from")
    data = {"holder": permit.holder, "valid_from": iso(permit.valid_from), "valid_until": iso(permit.valid_until)}
    return _plated_save(permit, kind="permit", actor=actor, data=data)


def blocked_plate_save(*, blocked_plate: BlockedPlate, actor=None) -> BlockedPlate:
    """Create or change a block-list entry from its plate as written (`plate_raw`): normal form and look-alike key
    derived here. Raises ValueError for a plate without letters or digits. Controllers' block list follows."""
    return _plated_save(blocked_plate, kind="blocked_plate", actor=actor, data={"reason": blocked_plate.reason})


def _plated_save[T: (Permit, BlockedPlate)](instance: T, *, kind: str, actor, data: dict) -> T:
    instance.plate_raw, instance.plate, instance.lookalike_key = _plate_of(instance.plate_raw)
    created = instance.pk is None
    with transaction.atomic():
        instance.save()
        audit_log_record(
            action=f"{kind}.create" if created else f"{kind}.update",
            actor=actor,
            obj=instance,
            carpark=instance.carpark,
            data={"plate": instance.plate, **data},
        )
    return instance
