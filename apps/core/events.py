"""Real-time events: the one way out of the domain to live clients (dashboards, lane controllers).

Every event is sent after the current transaction commits (never for work that rolled back), through the channel
layer, so it reaches consumers in any server process. Sending never blocks the caller, and a channel layer that is
down (Redis stopped) loses dashboard updates, never domain work: consumers resynchronise from a snapshot.
Nothing that must arrive relies on this path alone (channels-redis drops messages to a full channel).

Batching: in a server process (one with a running loop, see apps.core.runtime) committed events go into this
process's outbox, and one sender on the loop empties it: the car park events waiting for the same group go out as
ONE channel-layer message, `carpark.events` {"events": [{"kind", "data"}, ...]} in commit order (a lone one stays a
`carpark.event`). A plate-read decision emits about three events (read, visit, occupancy), and a group_send costs
four Redis round trips on the loop the lanes' replies share, so this is one group_send per decision, or fewer
when decisions commit together. While a send is in flight the next events wait and are merged into the following
one; a group's messages are sent one after another, so consumers see its events in commit order. Without a running
loop (management commands, tests), and in the benchmark's bare-Channels baseline, each event is sent on its own.
"""

import asyncio
import logging
import threading
from collections import deque
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

from apps.core import runtime

log = logging.getLogger(__name__)

MAX_BATCH = 100  # events per channel-layer message (a backlog goes out as several, in order)
MAX_PENDING = 2000  # events waiting per group while the layer is slow or down: the oldest are dropped
SEND_TIMEOUT_S = 2  # a group_send that takes longer (Redis unreachable) is abandoned: dashboards resync later


def carpark_group(carpark_id: int) -> str:
    return f"carpark.{carpark_id}"


def device_group(device_id: str) -> str:
    return f"device.{device_id}"


def staff_group(user_id: int) -> str:
    return f"staff.{user_id}"


def lane_group(lane_id: int) -> str:
    return f"lane.{lane_id}"


def publish_to_staff(*, user_id: int, kind: str, data: dict[str, Any]) -> None:
    """Tell a staff member's open dashboards that `kind` happened to them (logged out, roles changed)."""
    _send_on_commit(staff_group(user_id), {"type": "staff.event", "user": user_id, "kind": kind, "data": data})


def publish_to_carpark(*, carpark_id: int, kind: str, data: dict[str, Any]) -> None:
    """Tell the staff watching car park `carpark_id` that `kind` happened (after commit).

    Consumers receive `carpark.event` {"kind", "data"} or, for several events sent together, `carpark.events`
    {"events": [{"kind", "data"}, ...]} (oldest first): `carpark_messages` reads both."""
    _send_on_commit(carpark_group(carpark_id), {"type": "carpark.event", "kind": kind, "data": data})


def publish_to_device(*, device_id: str, kind: str, data: dict[str, Any]) -> None:
    """Tell the live connection of a lane controller (wherever it is held) that `kind` happened (after commit)."""
    _send_on_commit(device_group(device_id), {"type": "device.event", "kind": kind, "data": data})


def publish_to_lane(*, lane_id: int, kind: str, data: dict[str, Any]) -> None:
    """Tell the screens at lane `lane_id` (its display pages, consumers/lane_display.py) that `kind` happened there
    (after commit). A screen reloads its state from the database on it, so a lost one costs a stale screen only
    until the next."""
    _send_on_commit(lane_group(lane_id), {"type": "lane.event", "lane": lane_id, "kind": kind, "data": data})


def carpark_messages(message: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The (kind, data) car park events a channel-layer message carries, oldest first ([] for other messages)."""
    if message.get("type") == "carpark.event":
        return [(message["kind"], message["data"])]
    if message.get("type") == "carpark.events":
        return [(event["kind"], event["data"]) for event in message["events"]]
    return []


def _send_on_commit(group: str, message: dict[str, Any]) -> None:
    transaction.on_commit(lambda: _outbox.put(group, message), robust=True)


class _Outbox:
    """This process's committed events waiting for the loop, per group in commit order (thread-safe: on_commit
    callbacks run in whichever thread committed)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: dict[str, deque[dict[str, Any]]] = {}
        self.sending_on: asyncio.AbstractEventLoop | None = None  # the loop whose sender is scheduled or running
        self.dropped = 0

    def put(self, group: str, message: dict[str, Any]) -> None:
        loop = runtime.main_loop()
        if loop is None or settings.DASHBOARD_FANOUT == "direct":
            # No server loop: send it now (runtime.submit runs it to completion). DASHBOARD_FANOUT=direct is the
            # benchmark's bare-Channels baseline: one group_send per event, as a naive publisher would.
            runtime.submit(lambda: _send(group, message))
            return
        with self.lock:
            queue = self.pending.setdefault(group, deque())
            if len(queue) >= MAX_PENDING:
                queue.popleft()
                self.dropped += 1
            queue.append(message)
            if self.sending_on is loop:
                return  # the sender will take it
            self.sending_on = loop
        try:
            # Started one loop iteration later (a due timer runs after that iteration's I/O callbacks): the decision
            # or reply that produced these events is written to its socket first, then they go to the layer.
            loop.call_soon_threadsafe(loop.call_later, 0, runtime.submit, self.send_all)
        except RuntimeError:  # the loop closed meanwhile (shutdown): the events are lost like any unsent ones
            with self.lock:
                self.sending_on = None

    def take(self) -> dict[str, list[dict[str, Any]]]:
        """Everything waiting, or {} (and the sender stops: the next `put` starts another)."""
        with self.lock:
            batch = {group: list(queue) for group, queue in self.pending.items() if queue}
            self.pending.clear()
            if not batch:
                self.sending_on = None
            return batch

    async def send_all(self) -> None:
        """Until the outbox is empty: one message per group (per MAX_BATCH events), groups in parallel."""
        try:
            while batch := self.take():
                await asyncio.gather(*(_send_batch(group, messages) for group, messages in batch.items()))
        except BaseException:
            with self.lock:
                self.sending_on = None  # cancelled (shutdown) or broken: let the next event start a sender
            raise


_outbox = _Outbox()


def merged(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive car park events folded into `carpark.events` messages of at most MAX_BATCH (order kept); other
    messages unchanged."""
    out: list[dict[str, Any]] = []
    run: list[dict[str, Any]] = []

    def close_run() -> None:
        for start in range(0, len(run), MAX_BATCH):
            chunk = run[start : start + MAX_BATCH]
            if len(chunk) == 1:
                out.append(chunk[0])
            else:
                events = [{"kind": m["kind"], "data": m["data"]} for m in chunk]
                out.append({"type": "carpark.events", "events": events})
        run.clear()

    for message in messages:
        if message.get("type") == "carpark.event":
            run.append(message)
        else:
            close_run()
            out.append(message)
    close_run()
    return out


async def _send_batch(group: str, messages: list[dict[str, Any]]) -> None:
    for message in merged(messages):
        await _send(group, message)


async def _send(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await asyncio.wait_for(layer.group_send(group, message), SEND_TIMEOUT_S)
    except Exception as exc:  # Redis down: dashboards lag, nothing else is affected
        log.warning("event to %s not sent: %s", group, exc)
