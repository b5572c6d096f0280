"""Lane operations in the background: command time-outs, offline sweeps, allow-lists, no-shows.

Read retention runs in apps.customers.retention (one job for all personal data).

Every job takes ids (or nothing) and is idempotent: arq may run one twice.
"""

from apps.access import cameras, services
from apps.carparks.models import CarPark
from apps.core.jobs import job, periodic

EVERY_10_S = {"second": {0, 10, 20, 30, 40, 50}}


@periodic("access.commands_time_out", **EVERY_10_S)
def commands_time_out() -> None:
    """Commands without a result by expires_at become timed_out (device-protocol.md 4)."""
    services.commands_time_out()


@periodic("access.devices_sweep_offline", **EVERY_10_S)
def devices_sweep_offline() -> None:
    """Devices left `online` by a process that died: offline (live connections mark themselves within 2 s)."""
    services.devices_sweep_offline()


@job("access.allowlist_refresh")
def allowlist_refresh(*, carpark_id: int) -> None:
    """A booking, permit or blocked plate of the car park changed: push a new allow-list version if it differs."""
    services.allowlist_refresh(carpark_id=carpark_id)


@periodic("access.allowlists_refresh_all", minute=set(range(0, 60, 5)))
def allowlists_refresh_all() -> None:
    """The 24-hour window slides: refresh every car park's allow-list every 5 minutes."""
    for carpark_id in CarPark.objects.values_list("id", flat=True):
        services.allowlist_refresh(carpark_id=carpark_id)


@periodic("access.bookings_mark_no_show", minute=set(range(0, 60, 5)))
def bookings_mark_no_show() -> None:
    services.bookings_mark_no_show()


@job("access.unmapped_reads_decide")
def unmapped_reads_decide(*, device_id: str, camera: str) -> None:
    """A camera was mapped to a lane: decide the reads it pushed while unmapped (device-protocol.md 7)."""
    cameras.unmapped_reads_decide(device_id=device_id, camera=camera)


@periodic("access.unmapped_reads_sweep", minute=set(range(0, 60, 5)))
def unmapped_reads_sweep() -> None:
    """Kept reads of mapped cameras whose job was lost: decided (the table is the outbox, the queue a nudge)."""
    cameras.unmapped_reads_sweep()
