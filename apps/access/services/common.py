"""What every access service shares: the exceptions and time limits, a car park's policies for the rules, alerts,
and the events a change publishes (through apps.core.events, after commit)."""

import logging
import secrets
from datetime import datetime, timedelta

from django.utils import timezone

from apps.access import rules, selectors
from apps.access.models import (
    Alert,
    BarrierCommand,
    PlateRead,
    Visit,
)
from apps.carparks.models import CarPark, Lane
from apps.core import events

log = logging.getLogger(__name__)
ENROLMENT_CODE_TTL = timedelta(hours=24)
COMMAND_TTL = timedelta(seconds=10)
OFFLINE_AFTER = timedelta(seconds=60)
NO_SHOW_EVENTS_WITHIN = timedelta(days=2)  # a local day, in any time zone, is inside this
LAST_SEEN_EVERY = timedelta(seconds=15)  # an unchanged heartbeat rewrites last_seen_at only this often


class InvalidEnrolmentCode(Exception):
    pass


class UnknownLane(Exception):
    pass


class DeviceRevoked(Exception):
    """The device was revoked: it never gets a token again (a replacement is a new device)."""


class LaneOffline(Exception):
    """A manual command to a lane whose controller is offline: it fails at once (device-protocol.md 4)."""


class UnknownCommand(Exception):
    pass


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with `Z`, as the protocol recommends."""
    if value is None:
        return None
    return value.astimezone(timezone.UTC).isoformat().replace("+00:00", "Z")


# --- Plate reads -----------------------------------------------------------------------------------------------


def policy_of(carpark: CarPark) -> rules.Policy:
    return rules.Policy(
        min_score=float(carpark.min_score),
        repeat_window_s=carpark.repeat_window_s,
        stale_after_s=carpark.stale_after_s,
        early_arrival_min=carpark.early_arrival_min,
        grace_min=carpark.grace_min,
        overstay_policy=carpark.overstay_policy,
        anti_passback=carpark.anti_passback,
    )


def lane_policy(lane: Lane) -> rules.Policy:
    """The lane's car park's policies (kept on the Lane object, which lane_of_row reuses while its row is unchanged)."""
    policy = lane.__dict__.get("_policy")
    if policy is None:
        policy = lane.__dict__["_policy"] = policy_of(lane.carpark)
    return policy


def new_command_id() -> str:
    return "c-" + secrets.token_hex(6)


# --- Alerts ----------------------------------------------------------------------------------------------------


def _alert_raise(
    *, carpark, lane, plate: str, reason: str, read: PlateRead | None, policy: rules.Policy, checked: bool = False
) -> Alert | None:
    """At most one alert per lane and plate every repeat_window_s (device-protocol.md 3, rule 4)."""
    since = timezone.now() - timedelta(seconds=policy.repeat_window_s)
    if not checked and Alert.objects.filter(lane=lane, plate=plate, created_at__gte=since).exists():
        return None
    alert = Alert.objects.create(carpark=carpark, lane=lane, plate=plate, reason=reason, read=read)
    events.publish_to_carpark(carpark_id=carpark.id, kind="alert", data=selectors.alert_event_data(alert))
    return alert


# --- Events ----------------------------------------------------------------------------------------------------


def _publish_read(carpark, lane, row: PlateRead) -> None:
    data = _read_event_data(carpark, lane, row.id, row.__dict__)
    events.publish_to_carpark(carpark_id=carpark.id, kind="read", data=data)


def _read_event_data(carpark, lane, read_pk: int, row: dict) -> dict:
    """A read's event from its fields by attname."""
    return {
        "id": read_pk,
        "carpark": carpark.code,
        "lane": lane.code,
        "plate": row["plate"],
        "action": row["action"],
        "reason": row["reason"],
        "match": row["match"] or None,
        "booking": row["decision"]["booking"],
        "captured_at": iso(row["captured_at"]),
        "read_id": row["read_id"],
    }


def _publish_visit(carpark, visit: Visit, reference: str | None = None) -> None:
    data = selectors.visit_event_data(visit, carpark, reference=reference)
    events.publish_to_carpark(carpark_id=carpark.id, kind="visit", data=data)


def _publish_occupancy(carpark) -> None:
    """Occupancy = open visits, counted now."""
    data = {"carpark": carpark.code, "occupancy": selectors.carpark_occupancy(carpark_id=carpark.id)}
    events.publish_to_carpark(carpark_id=carpark.id, kind="occupancy", data=data)


def _publish_occupancy_changed(carpark) -> None:
    events.publish_to_carpark(carpark_id=carpark.id, kind="occupancy", data=_occupancy_changed_data(carpark))


def _occupancy_changed_data(carpark) -> dict:
    """Occupancy changed, not counted (`null`): the decision path does not pay for a count that grows with the car
    park; the dashboards' fan-out recounts once per flush for all the changes it folds together."""
    return {"carpark": carpark.code, "occupancy": None}


def _publish_command(command: BarrierCommand, lane) -> None:
    events.publish_to_carpark(
        carpark_id=lane.carpark_id, kind="command", data=selectors.command_event_data(command, lane)
    )
