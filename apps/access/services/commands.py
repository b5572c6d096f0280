"""Barrier commands and alerts staff act on: opening a barrier by hand, command results and time-outs,
acknowledging alerts."""

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from apps.access import selectors
from apps.access.models import (
    Alert,
    BarrierCommand,
    Device,
    Visit,
)
from apps.access.services.common import (
    COMMAND_TTL,
    LaneOffline,
    UnknownCommand,
    _publish_command,
    _publish_occupancy,
    iso,
    new_command_id,
)
from apps.access.services.visits import _visit_closed_effects
from apps.carparks.models import Lane
from apps.core import events
from apps.core.services import audit_log_record


def alert_raise_staff(*, carpark_id: int, plate: str, reason: str, detail: str) -> Alert:
    """An alert from work off the lanes (apps.ground: a meet-and-greet return at risk), on the car park's dashboards."""
    with transaction.atomic():
        alert = Alert.objects.create(carpark_id=carpark_id, plate=plate[:32], reason=reason[:32], detail=detail[:200])
        alert = Alert.objects.select_related("carpark").get(pk=alert.pk)
        events.publish_to_carpark(carpark_id=carpark_id, kind="alert", data=selectors.alert_event_data(alert))
    return alert


def alert_acknowledge(*, alert_id: int, user) -> Alert:
    """A staff member has seen to an alert (acknowledging twice keeps the first)."""
    with transaction.atomic():
        alert = (
            Alert.objects.select_for_update(of=("self",))
            .select_related("carpark", "lane", "acknowledged_by")
            .get(pk=alert_id)
        )
        if alert.acknowledged_at is None:
            alert.acknowledged_by, alert.acknowledged_at = user, timezone.now()
            alert.save(update_fields=["acknowledged_by", "acknowledged_at"])
            audit_log_record(action="alert.acknowledge", actor=user, obj=alert, carpark=alert.carpark)
            events.publish_to_carpark(carpark_id=alert.carpark_id, kind="alert", data=selectors.alert_event_data(alert))
    return alert


# --- Barrier commands ------------------------------------------------------------------------------------------


def barrier_open_manual(*, lane_id: int, user, reason: str) -> BarrierCommand:
    """Staff open a lane's barrier from the dashboard: a server-initiated command, audited.

    Raises LaneOffline at once when no online controller serves the lane. On an exit lane where a car is held
    for overstay (policy `hold`), opening by hand closes that visit.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValueError("a reason is required")
    with transaction.atomic():
        lane = Lane.objects.select_related("carpark").get(pk=lane_id)
        device = (
            Device.objects.filter(lanes=lane, online=True, revoked_at__isnull=True).order_by("-last_seen_at").first()
        )
        if device is None:
            raise LaneOffline(f"the controller of lane {lane} is offline")
        command = BarrierCommand.objects.create(
            command_id=new_command_id(),
            lane=lane,
            device=device,
            action="open",
            reason=f"manual: {reason}"[:200],
            issued_by=user,
            expires_at=timezone.now() + COMMAND_TTL,
        )
        audit_log_record(
            action="barrier.open_manual",
            actor=user,
            obj=command,
            carpark=lane.carpark,
            data={"lane": lane.code, "reason": reason, "command_id": command.command_id},
        )
        held = Visit.objects.select_for_update(of=("self",)).filter(
            exit_lane=lane, exited_at__isnull=True, held_at__isnull=False
        )
        held = held.select_related("carpark").order_by("-held_at").first()
        if held is not None:
            held.exited_at, held.held_at = timezone.now(), None
            held.closed_reason = f"opened by hand at the exit by {user.get_username() if user else 'staff'}"
            held.save(update_fields=["exited_at", "held_at", "closed_reason"])
            _visit_closed_effects(held, held.overstay_minutes)  # charged as measured when it presented at the exit
            _publish_occupancy(lane.carpark)
            events.publish_to_lane(lane_id=lane.pk, kind="overstay_closed", data={})  # its display drops the QR code
        events.publish_to_device(
            device_id=str(device.id),
            kind="command",
            data={
                "type": "command",
                "command_id": command.command_id,
                "lane": lane.code,
                "action": "open",
                "reason": "manual",
                "expires_at": iso(command.expires_at),
            },
        )
        _publish_command(command, lane)
    return command


def barrier_open_paid(*, visit_id: int) -> BarrierCommand | None:
    """A held overstay has been paid (apps.payments): the server opens the exit lane's barrier by itself (a
    server-initiated `open`, reason `paid`) and the visit closes, charged as measured when it presented at the exit.
    None when the visit is no longer held (opened by hand meanwhile) or no controller of the lane is online (the
    visit still closes; staff see no command and open by hand)."""
    with transaction.atomic():
        held = Visit.objects.select_for_update(of=("self",)).select_related("carpark", "exit_lane").get(pk=visit_id)
        if held.exited_at is not None or held.held_at is None or held.exit_lane_id is None:
            return None
        lane = held.exit_lane
        # exited as it presented at the exit: the overstay is charged for that moment, which is what was paid
        held.exited_at, held.held_at, held.closed_reason = held.held_at, None, "overstay paid at the exit"
        held.save(update_fields=["exited_at", "held_at", "closed_reason"])
        _visit_closed_effects(held, held.overstay_minutes)
        _publish_occupancy(held.carpark)
        device = (
            Device.objects.filter(lanes=lane, online=True, revoked_at__isnull=True).order_by("-last_seen_at").first()
        )
        if device is None:
            return None
        command = BarrierCommand.objects.create(
            command_id=new_command_id(),
            lane=lane,
            device=device,
            action="open",
            reason="paid: overstay",
            expires_at=timezone.now() + COMMAND_TTL,
        )
        audit_log_record(
            action="barrier.open_paid",
            actor_label="payments",
            obj=command,
            carpark=lane.carpark,
            data={"lane": lane.code, "visit": held.pk, "command_id": command.command_id},
        )
        events.publish_to_device(
            device_id=str(device.id),
            kind="command",
            data={
                "type": "command",
                "command_id": command.command_id,
                "lane": lane.code,
                "action": "open",
                "reason": "paid",
                "expires_at": iso(command.expires_at),
            },
        )
        _publish_command(command, lane)
    return command


def command_result_record(*, device_id: str, command_id: str, status: str, detail: str = "") -> BarrierCommand:
    """A controller's `command_result`. Each command is answered once: a repeated answer changes nothing."""
    with transaction.atomic():
        command = (
            BarrierCommand.objects.select_for_update(of=("self",))
            .select_related("lane", "issued_by")
            .filter(device_id=device_id, command_id=command_id)
            .first()
        )
        if command is None:
            raise UnknownCommand(command_id)
        if command.status in (BarrierCommand.Status.PENDING, BarrierCommand.Status.TIMED_OUT):
            command.status, command.detail, command.result_at = status, detail[:500], timezone.now()
            command.save(update_fields=["status", "detail", "result_at"])
            _publish_command(command, command.lane)
    return command


def commands_time_out(*, now: datetime | None = None) -> int:
    """Commands without a result by expires_at are marked timed_out (staff see it)."""
    now = now or timezone.now()
    count = 0
    with transaction.atomic():
        pending = BarrierCommand.objects.select_for_update(skip_locked=True, of=("self",)).select_related(
            "lane", "issued_by"
        )
        for command in pending.filter(status=BarrierCommand.Status.PENDING, expires_at__lt=now):
            command.status, command.result_at = BarrierCommand.Status.TIMED_OUT, now
            command.save(update_fields=["status", "result_at"])
            _publish_command(command, command.lane)
            count += 1
    return count
