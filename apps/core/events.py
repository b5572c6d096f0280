"""Real-time events: the one way out of the domain to live clients (dashboards, lane controllers).

Every event is sent after the current transaction commits (never for work that rolled back), through the channel
layer, so it reaches consumers in any server process. Sending never blocks the caller, and a channel layer that is
down (Redis stopped) loses dashboard updates, never domain work: consumers resynchronise from a snapshot.
Nothing that must arrive relies on this path alone (channels-redis drops messages to a full channel).
"""

import logging
from typing import Any

from channels.layers import get_channel_layer
from django.db import transaction

from apps.core import runtime

log = logging.getLogger(__name__)


def carpark_group(carpark_id: int) -> str:
    return f"carpark.{carpark_id}"


def device_group(device_id: str) -> str:
    return f"device.{device_id}"


def staff_group(user_id: int) -> str:
    return f"staff.{user_id}"


def publish_to_staff(*, user_id: int, kind: str, data: dict[str, Any]) -> None:
    """Tell a staff member's open dashboards that `kind` happened to them (logged out, roles changed)."""
    _send_on_commit(staff_group(user_id), {"type": "staff.event", "user": user_id, "kind": kind, "data": data})


def publish_to_carpark(*, carpark_id: int, kind: str, data: dict[str, Any]) -> None:
    """Tell the staff watching car park `carpark_id` that `kind` happened (after commit)."""
    _send_on_commit(carpark_group(carpark_id), {"type": "carpark.event", "kind": kind, "data": data})


def publish_to_device(*, device_id: str, kind: str, data: dict[str, Any]) -> None:
    """Tell the live connection of a lane controller (wherever it is held) that `kind` happened (after commit)."""
    _send_on_commit(device_group(device_id), {"type": "device.event", "kind": kind, "data": data})


def _send_on_commit(group: str, message: dict[str, Any]) -> None:
    transaction.on_commit(lambda: runtime.submit(lambda: _send(group, message)), robust=True)


async def _send(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.group_send(group, message)
    except Exception as exc:  # Redis down: dashboards lag, nothing else is affected
        log.warning("event to %s not sent: %s", group, exc)
