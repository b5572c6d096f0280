"""Vendor cameras (device-protocol.md 7): which lane each camera of a device serves, and the reads of cameras that
serve none yet. A push from an unmapped camera is kept, undecided, and staff are alerted; once a supervisor maps the
camera, a job decides the kept reads through the one decision service, as reads that arrived that late.

The mapping lives in Device.settings: `{"cameras": {"<camera id>": "<lane code>"}}` for every vendor (Plate
Recognizer `data.camera_id`, Hikvision `channelID`); a Hikvision device may also carry the older `channels` map,
which wins for its channels. A device with one lane needs no mapping.
"""

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from apps.access import decision, selectors, services
from apps.access.models import Alert, Device, UnmappedRead
from apps.carparks.models import CarPark
from apps.core import events, plates
from apps.core.jobs import enqueue
from apps.core.services import audit_log_record

CAMERAS = "cameras"
UNMAPPED_CAMERA = "unmapped_camera"  # the alert's reason


def lane_for_camera(vendor: dict, lanes: Iterable[str], camera: str, key: str = CAMERAS) -> str | None:
    """The lane code camera `camera` maps to in a device's settings (its `key` map, then `cameras`), if it is one of
    the device's `lanes`; a one-lane device's only lane."""
    lanes = list(lanes)
    lane = None
    for name in dict.fromkeys((key, CAMERAS)):
        mapping = vendor.get(name)
        if isinstance(mapping, dict) and str(camera) in mapping:
            lane = mapping[str(camera)]
            break
    if lane is None and len(lanes) == 1:
        lane = lanes[0]
    return lane if lane in lanes else None


# --- Services ----------------------------------------------------------------------------------------------------


def unmapped_read_keep(
    *,
    device_id: str,
    camera: str,
    read_id: str,
    plate: str,
    score: float,
    captured_at: datetime,
    candidates: list | None = None,
    region: str = "",
    vehicle: dict | None = None,
    retransmit: bool = False,
) -> UnmappedRead:
    """Keep a read of an unmapped camera (a resent one is kept once). The first read of a camera that is not already
    waiting under an open alert raises an `unmapped_camera` alert, so staff hear of it once, not per car."""
    with transaction.atomic():
        # locked: two first reads of a camera at once raise one alert
        device = Device.objects.select_for_update(no_key=True).select_related("carpark").get(pk=device_id)
        kept, created = UnmappedRead.objects.get_or_create(
            device=device,
            read_id=read_id,
            defaults={
                "camera": camera[:64],
                "plate": plate[:32],
                "score": score,
                "captured_at": captured_at,
                "candidates": candidates or [],
                "region": region,
                "vehicle": vehicle,
                "retransmit": retransmit,
            },
        )
        if not created:
            return kept
        waiting = UnmappedRead.objects.filter(
            device=device, camera=kept.camera, decided_at__isnull=True, alert__acknowledged_at__isnull=True
        ).exclude(alert=None)
        kept.alert_id = waiting.values_list("alert", flat=True).first()
        if kept.alert_id is None:
            kept.alert = Alert.objects.create(
                carpark=device.carpark, plate=plates.normalise(plate)[:32], reason=UNMAPPED_CAMERA
            )
            events.publish_to_carpark(
                carpark_id=device.carpark_id, kind="alert", data=selectors.alert_event_data(kept.alert)
            )
        kept.save(update_fields=["alert"])
    return kept


def device_camera_map(*, device_id: str, camera: str, lane_code: str, actor=None) -> int:
    """Staff map a camera of a device to one of its lanes (audited; the device's connection gets a new `welcome`).
    The camera's alerts are acknowledged by them, and its kept reads are decided in the background; returns how many
    were waiting. Raises services.UnknownLane for a lane that is not the device's."""
    camera = camera.strip()[:64]
    if not camera:
        raise ValueError("a camera id is required")
    with transaction.atomic():
        device = Device.objects.select_for_update().select_related("carpark").get(pk=device_id)
        if not device.lanes.filter(code=lane_code).exists():
            raise services.UnknownLane(lane_code)
        settings = dict(device.settings or {})
        settings[CAMERAS] = {**(settings.get(CAMERAS) or {}), camera: lane_code}
        if camera in (settings.get("channels") or {}):  # it would win over the new mapping
            settings["channels"] = {k: v for k, v in settings["channels"].items() if k != camera}
        device.settings = settings
        device.save(update_fields=["settings"])
        audit_log_record(
            action="device.camera_map", actor=actor, actor_label="" if actor else "command line", obj=device,
            carpark=device.carpark, data={"camera": camera, "lane": lane_code},
        )  # fmt: skip
        services.device_settings_changed(device_id=str(device.id))
        waiting = UnmappedRead.objects.filter(device=device, camera=camera, decided_at__isnull=True)
        for alert_id in sorted(set(waiting.exclude(alert=None).values_list("alert", flat=True))):
            services.alert_acknowledge(alert_id=alert_id, user=actor)
        count = waiting.count()
        if count:
            enqueue("access.unmapped_reads_decide", device_id=str(device.id), camera=camera)
    return count


def unmapped_reads_sweep() -> int:
    """Kept reads of cameras mapped since, whose job was lost (Redis down): decided now. Returns how many."""
    waiting = UnmappedRead.objects.filter(decided_at__isnull=True).values_list("device", "camera").distinct()
    return sum(unmapped_reads_decide(device_id=str(device_id), camera=camera) for device_id, camera in waiting)


def unmapped_reads_decide(*, device_id: str, camera: str) -> int:
    """Decide a mapped camera's kept reads, oldest first, with the lane's rules at their `captured_at`, as reads
    received now: past the car park's `stale_after_s` they are stale (recorded, applied to visits, nothing opens).
    Idempotent: a read decided before a crash is a duplicate for plate_read_decide. Returns how many it decided."""
    identity = selectors.device_identity_by_id(device_id=device_id)
    if identity is None:  # revoked meanwhile: its reads stay kept
        return 0
    lane = lane_for_camera(identity.vendor, identity.lanes, camera, "channels")  # as cameras_of_carpark shows it
    if lane is None:  # not mapped (yet, or any more)
        return 0
    done = 0
    for kept in UnmappedRead.objects.filter(device_id=device_id, camera=camera, decided_at__isnull=True).order_by(
        "captured_at", "id"
    ):
        decision.plate_read_decide(
            device_id=device_id, read_id=kept.read_id, lane_id=identity.lane_ids[lane],
            plate=kept.plate, score=kept.score, captured_at=kept.captured_at, candidates=kept.candidates,
            region=kept.region, vehicle=kept.vehicle, retransmit=kept.retransmit, with_command=False,
        )  # fmt: skip
        UnmappedRead.objects.filter(pk=kept.pk).update(decided_at=timezone.now())
        done += 1
    return done


def unmapped_reads_purge(*, now: datetime | None = None) -> int:
    """Kept reads older than their car park's read retention (device-protocol.md 6), decided or not: a decided one
    lives on as its PlateRead. Returns how many were deleted."""
    now = now or timezone.now()
    deleted = 0
    for carpark_id, days in CarPark.objects.values_list("id", "read_retention_days"):
        old = UnmappedRead.objects.filter(device__carpark_id=carpark_id, received_at__lt=now - timedelta(days=days))
        deleted += old.delete()[0]
    return deleted


# --- Selectors ---------------------------------------------------------------------------------------------------


def cameras_of_carpark(*, carpark_id: int) -> list[dict]:
    """The vendor cameras of a car park's devices, mapped or waiting for a lane, with their kept reads' count:
    [{"device", "device_name", "camera", "lane" (None when unmapped), "kept", "lanes" (the device's)}]."""
    devices = Device.objects.filter(carpark_id=carpark_id, revoked_at__isnull=True).prefetch_related("lanes")
    waiting: dict[tuple[str, str], int] = defaultdict(int)
    rows = UnmappedRead.objects.filter(device__in=devices, decided_at__isnull=True).values("device", "camera")
    for row in rows.annotate(n=Count("id")):
        waiting[(str(row["device"]), row["camera"])] += row["n"]
    cameras = []
    for device in sorted(devices, key=lambda d: (d.name, str(d.id))):
        lanes = sorted(lane.code for lane in device.lanes.all())
        vendor = device.settings or {}
        known = {str(c) for key in ("channels", CAMERAS) for c in (vendor.get(key) or {})}
        known |= {camera for (device_id, camera) in waiting if device_id == str(device.id)}
        for camera in sorted(known):
            cameras.append(
                {
                    "device": str(device.id),
                    "device_name": device.name or f"controller {str(device.id)[:8]}",
                    "camera": camera,
                    "lane": lane_for_camera(vendor, lanes, camera, "channels"),
                    "kept": waiting.get((str(device.id), camera), 0),
                    "lanes": lanes,
                }
            )
    return cameras


def device_carpark_id(*, device_id: str) -> int | None:
    return Device.objects.filter(pk=device_id).values_list("carpark_id", flat=True).first()
