"""Devices' clocks (device-protocol.md 3, rule 2): a read older than `stale_after_s` is applied as if the barrier had
opened only when it comes from a controller's offline buffer (`retransmit` or `local_action`). Any other stale read
(or one as far ahead) says the device's clock is wrong (or the payload is replayed): it is decided at the server's
receipt time (apps.access.decision), and staff are alerted once per device.
Each device's offset is measured from heartbeats (`sent_at`), vendor pushes and such reads, and shown on the dashboard.
"""

import dataclasses
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from apps.access import rules, selectors
from apps.access.models import Alert, Device
from apps.core import events

ALERT_REASON = "clock"
# An offset that moved less than this since it was last stored is not stored again (heartbeats come every 30 s).
RECORD_CHANGE_S = 1.0
RECORD_AT_LEAST_EVERY = timedelta(minutes=10)

_recorded: dict[str, tuple[float, datetime]] = {}  # device id -> (offset, when), as this process last stored it


def offset_s(*, device_time: datetime, now: datetime) -> float:
    return round((device_time - now).total_seconds(), 1)


def on_server_clock(
    read: rules.Read, *, policy: rules.Policy, now: datetime, retransmit: bool, local_action: str
) -> tuple[rules.Read, float | None]:
    """The read to decide, and the device's clock offset when it is decided at `now` instead of its captured_at
    (a read not from an offline buffer that is stale, or as far ahead of the server's clock); else the read
    unchanged and None."""
    buffered = retransmit or bool(local_action)
    if buffered or abs(read.captured_at - now) <= timedelta(seconds=policy.stale_after_s):
        return read, None
    return dataclasses.replace(read, captured_at=now), offset_s(device_time=read.captured_at, now=now)


def worth_recording(device_id: str, offset: float, now: datetime | None = None) -> bool:
    """Whether an offset measured at an edge (heartbeat, push) is news: this process stored none, a different one,
    or none for a while. Keeps a device's row from being written on every heartbeat."""
    last = _recorded.get(device_id)
    now = now or timezone.now()
    return last is None or abs(last[0] - offset) >= RECORD_CHANGE_S or now - last[1] >= RECORD_AT_LEAST_EVERY


def device_clock_record(*, device_id: str, offset_s: float, stale_after_s: int | None = None) -> None:
    """Store a device's clock offset (its time minus the server's, in seconds). Staff are alerted once when it is
    off by more than its car park's `stale_after_s` (or `stale_after_s` given); once it is right again, a later
    fault alerts again. Joins the caller's transaction when there is one (a decision)."""
    now = timezone.now()
    with transaction.atomic():
        device = Device.objects.select_related("carpark").select_for_update(of=("self",)).filter(pk=device_id).first()
        if device is None:
            return
        carpark = device.carpark
        off = abs(offset_s) > (stale_after_s if stale_after_s is not None else carpark.stale_after_s)
        alert = None
        if off and device.clock_alerted_at is None:
            device.clock_alerted_at = now
            side = "ahead" if offset_s > 0 else "behind"
            detail = f"camera clock is {abs(offset_s):.0f} s off ({side}): {device}"[:200]
            alert = Alert.objects.create(carpark=carpark, plate="", reason=ALERT_REASON, detail=detail)
        elif not off:
            device.clock_alerted_at = None
        device.clock_offset_s, device.clock_measured_at = offset_s, now
        device.save(update_fields=["clock_offset_s", "clock_measured_at", "clock_alerted_at"])
        events.publish_to_carpark(carpark_id=carpark.id, kind="device", data=selectors.device_event_data(device))
        if alert is not None:
            events.publish_to_carpark(carpark_id=carpark.id, kind="alert", data=selectors.alert_event_data(alert))
    _recorded[device_id] = (offset_s, now)
