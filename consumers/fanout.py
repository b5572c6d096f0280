"""Per-process fan-out of car park events to the staff dashboards connected to this process.

The naive way (every dashboard socket joins `carpark.<id>` and forwards every event) costs one channel-layer message
per event per socket: 50 events/s to 1,000 dashboards is 50,000 Redis pushes and frames a second, which neither Redis
nor one daphne process can keep up with (bench/dashboard.py measures it). Here each process joins each car park's
group ONCE (the sockets do not listen on the channel layer at all), folds the events of a burst into one `delta`
(occupancy, new reads/alerts/visits, latest devices, manual or failed commands), serialises it once and writes that
text to every local socket watching the car park. A lone event goes out at once; in a burst, flushes are
DASHBOARD_FLUSH_S apart, stretched when many sockets watch so that a process writes about FRAME_BUDGET frames a
second, but never past MAX_INTERVAL_S: every dashboard holds the latest state within a second, and the CPU it costs
stays bounded however busy the lanes are. The lanes' decisions never wait for any of it (events leave after commit),
and a big flush is written in small slices paced over up to SPREAD_S, so the loop and the GIL the decision threads
share are never held for long (see `_write`). Events arrive one per channel-layer message or several together
(`carpark.events`, apps/core/events.py); an `occupancy` event may carry `null` ("changed"): the flush recounts.

Must-arrive data never relies on this path alone: occupancy is recounted at each flush, and after a channel-layer
outage the subscribers reload a snapshot from the database.
"""

import asyncio
import json
import logging
import time
from collections import defaultdict, deque
from typing import Protocol

from channels.layers import get_channel_layer
from django.conf import settings

from apps.core.concurrency import run_sync
from apps.core.events import carpark_group, carpark_messages, lane_group, staff_group
from apps.staff import selectors

log = logging.getLogger(__name__)

MAX_READS = 20  # a delta carries at most this many new reads per car park: the dashboard shows the latest 20
MAX_ITEMS = 200  # alerts / visits / commands kept per delta (more in one flush interval: the oldest are dropped)
FRAME_BUDGET = 1000  # frames a second per process and car park before flushes are spaced further apart
MAX_INTERVAL_S = 0.5  # the longest wait between flushes
SLICE = 20  # sockets written per slice of a flush (about a millisecond of the loop)
SPREAD_S = 0.2  # a big flush's slices are spread over at most this long: MAX_INTERVAL_S + SPREAD_S + the recount
#                 leaves about 0.25 s of the 1 s promise for the network and the browser
REJOIN_EVERY_S = 30  # re-join groups (they expire in Redis, and Redis may have restarted)
RECOUNT_EVERY_S = 1.0  # a watched car park's occupancy is counted this often, and sent when it is not what was sent


class Subscriber(Protocol):
    async def deliver(self, text: str) -> None: ...

    async def resync(self) -> None: ...


class Delta:
    """The events of one car park since the last flush, coalesced: what a dashboard needs to catch up."""

    def __init__(self) -> None:
        self.occupancy: int | None = None  # the latest count an event carried (a fallback for the recount)
        self.occupancy_changed = False  # an `occupancy` event came, with a count or `null` ("changed, recount")
        self.reads: deque[dict] = deque(maxlen=MAX_READS)
        self.by_kind: dict[str, dict] = {"alert": {}, "device": {}, "command": {}, "visit": {}, "booking": {}}

    def add(self, kind: str, data: dict) -> None:
        if kind == "occupancy":
            self.occupancy_changed = True
            if data.get("occupancy") is not None:
                self.occupancy = data["occupancy"]
        elif kind == "read":
            self.reads.append(data)
        elif kind == "command" and not data.get("issued_by") and data.get("status") in ("pending", "done"):
            return  # routine barrier openings for reads: the reads show them; manual ones and failures are news
        elif kind in self.by_kind:
            items = self.by_kind[kind]
            items.pop(_key(kind, data), None)  # re-insert: the latest version, in arrival order
            items[_key(kind, data)] = data
            if len(items) > MAX_ITEMS:
                items.pop(next(iter(items)))

    def __bool__(self) -> bool:
        return self.occupancy_changed or bool(self.reads) or any(self.by_kind.values())

    @property
    def needs_count(self) -> bool:
        """Occupancy may have moved: an occupancy event (counted or not) or a visit opened or closed."""
        return self.occupancy_changed or bool(self.by_kind["visit"])

    def frame(self, carpark_id: int, code: str) -> dict:
        return {
            "type": "delta",
            "carpark": code,
            "carpark_id": carpark_id,
            "occupancy": self.occupancy,
            "reads": list(self.reads),
            "alerts": list(self.by_kind["alert"].values()),
            "devices": list(self.by_kind["device"].values()),
            "commands": list(self.by_kind["command"].values()),
            "visits": list(self.by_kind["visit"].values()),
            "bookings": list(self.by_kind["booking"].values()),
        }


def _key(kind: str, data: dict) -> str:
    field = {"device": "device", "command": "command_id", "booking": "reference"}.get(kind, "id")
    return str(data.get(field))


def single_event_frame(carpark_id: int, code: str, kind: str, data: dict) -> str:
    """One event as a delta frame: the un-coalesced baseline (DASHBOARD_FANOUT=direct)."""
    delta = Delta()
    delta.add(kind, data)
    return json.dumps(delta.frame(carpark_id, code))


class CarparkFanout:
    """One per process and event loop: joins each watched car park's group, and each connected staff member's and
    lane display's group, once, and fans out to the local sockets. The sockets themselves do not listen on the
    channel layer: with channels-redis, every message a process receives wakes every receiver of that process, so
    1,000 sockets listening would cost 1,000 wake-ups per event."""

    STAFF = "staff"  # the key of the one channel that receives all staff groups' messages
    DISPLAYS = "displays"  # ... and of the one that receives all lane displays' groups' messages
    # Per-socket groups: channel key -> (group of an id, message type, the sockets' method it calls)
    WATCHED = {STAFF: (staff_group, "staff.event", "staff_event"), DISPLAYS: (lane_group, "lane.event", "lane_event")}

    def __init__(self, layer, flush_s: float) -> None:
        self.layer, self.flush_s = layer, flush_s
        self.subscribers: dict[int, set[Subscriber]] = defaultdict(set)
        self.watching: dict[str, dict[int, set]] = {key: defaultdict(set) for key in self.WATCHED}  # id -> sockets
        self.codes: dict[int, str] = {}
        self.channels: dict[int | str, str] = {}  # car park id (or STAFF) -> this process's channel for it
        self.pending: dict[int, Delta] = {}
        self.scheduled: set[int] = set()
        self.last_flush: dict[int, float] = defaultdict(float)
        self.sent_occupancy: dict[int, int] = {}  # the last occupancy sent to this process's sockets, per car park
        self.joined: set[int] = set()  # car parks with a socket subscribed since the last occupancy sent
        self.writing: dict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.tasks: set[asyncio.Task] = set()
        self.frames_sent = 0
        self.joining = asyncio.Lock()

    async def subscribe(self, carpark_id: int, code: str, subscriber: Subscriber) -> None:
        self.codes[carpark_id] = code
        self.subscribers[carpark_id].add(subscriber)
        self.joined.add(carpark_id)
        async with self.joining:
            if carpark_id not in self.channels:
                await self._listen(carpark_id)
                await self._join(carpark_group(carpark_id), carpark_id)

    def unsubscribe(self, carpark_id: int, subscriber: Subscriber) -> None:
        self.subscribers[carpark_id].discard(subscriber)

    async def watch_staff(self, user_id: int, socket) -> None:
        """Deliver `staff.<user id>` events (logged out, roles changed) to this socket's `staff_event`."""
        await self.watch(self.STAFF, user_id, socket)

    async def unwatch_staff(self, user_id: int, socket) -> None:
        await self.unwatch(self.STAFF, user_id, socket)

    async def watch(self, key: str, ident: int, socket) -> None:
        """Deliver the events of `ident`'s group (WATCHED[key]) to this socket; joined before it returns."""
        group, _, _ = self.WATCHED[key]
        self.watching[key][ident].add(socket)
        async with self.joining:
            if key not in self.channels:
                await self._listen(key)
            if len(self.watching[key][ident]) == 1:
                await self._join(group(ident), key)

    async def unwatch(self, key: str, ident: int, socket) -> None:
        sockets = self.watching[key].get(ident, set())
        sockets.discard(socket)
        if not sockets:
            self.watching[key].pop(ident, None)
            try:
                await self.layer.group_discard(self.WATCHED[key][0](ident), self.channels[key])
            except Exception as exc:
                log.debug("dashboards: %s group discard failed (%s)", key, exc)

    async def _listen(self, key: int | str) -> None:
        # The default prefix: channels-redis receives all of a process's "specific" channels through one key.
        self.channels[key] = await self.layer.new_channel()
        self._spawn(self._receive_loop(key))
        if key not in self.WATCHED:
            self._spawn(self._rejoin_loop(lambda: [carpark_group(key)], key))
            self._spawn(self._recount_loop(key))
        else:
            group = self.WATCHED[key][0]
            self._spawn(self._rejoin_loop(lambda: [group(ident) for ident in list(self.watching[key])], key))

    async def _join(self, group: str, key: int | str) -> None:
        """Joined before the subscriber loads its snapshot, so no event falls between the two."""
        try:
            await self.layer.group_add(group, self.channels[key])
        except Exception as exc:
            log.warning("dashboards: cannot join %s (%s); retrying", group, exc)

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _back(self, key: int) -> bool:
        try:
            await self.layer.group_add(carpark_group(key), self.channels[key])
        except Exception:
            return False
        return True

    async def _recount_loop(self, carpark_id: int) -> None:
        """The channel layer may drop an event (a full channel, Redis restarting, a process starting), and when it is
        the last one for a while nothing would correct the screens: the occupancy is counted now and then and sent
        when it differs from what this process last sent. A lost event leaves a figure wrong for a second at most."""
        while True:
            await asyncio.sleep(RECOUNT_EVERY_S)
            if not self.subscribers[carpark_id] or carpark_id in self.scheduled:
                continue
            try:
                count = await run_sync(selectors.carpark_occupancy, carpark_id=carpark_id)
            except Exception as exc:
                log.debug("dashboards: occupancy not recounted (%s)", exc)
                continue
            # A new socket's snapshot may have been counted (shared with sockets that asked before it) ahead of a
            # flush it did not get: it gets the count too.
            if count != self.sent_occupancy.get(carpark_id) or carpark_id in self.joined:
                self.add(carpark_id, "occupancy", {"occupancy": count})

    async def _rejoin_loop(self, groups, key: int | str) -> None:
        """Groups expire in Redis (and Redis may restart): join again now and then."""
        while True:
            await asyncio.sleep(REJOIN_EVERY_S)
            for group in groups():
                await self._join(group, key)

    async def _receive_loop(self, key: int | str) -> None:
        failing = False
        while True:
            try:
                message = await self.layer.receive(self.channels[key])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not failing:
                    log.warning("dashboards: events interrupted (%s)", exc)
                failing = True
                await asyncio.sleep(1)
                if key not in self.WATCHED and await self._back(key):
                    # Redis answers again, and a restarted one has forgotten the group: join it now and resync,
                    # not only when the next event comes (there may be none for a while; the one lost may be the
                    # last).
                    failing = False
                    await self._resync(key)
                continue
            if failing and key not in self.WATCHED:  # events may have been lost meanwhile: all reload a snapshot
                await self._resync(key)
            failing = False
            if key not in self.WATCHED:
                for kind, data in carpark_messages(message):  # one event, or several sent together (in order)
                    self.add(key, kind, data)
            else:
                await self._watched_event(key, message)

    async def _watched_event(self, key: str, message: dict) -> None:
        _, kind, method = self.WATCHED[key]
        if message.get("type") != kind:
            return
        ident = message.get("user" if key == self.STAFF else "lane")
        for socket in list(self.watching[key].get(ident, ())):
            try:
                await getattr(socket, method)(message)
            except Exception:
                log.exception("dashboards: a %s could not be applied", kind)

    def interval(self, carpark_id: int) -> float:
        """Seconds between flushes: DASHBOARD_FLUSH_S, stretched when many sockets watch so that this process
        writes at most about FRAME_BUDGET frames a second (CPU the lanes' decisions need), but never past
        MAX_INTERVAL_S: every dashboard still holds the latest state within a second."""
        return min(MAX_INTERVAL_S, max(self.flush_s, len(self.subscribers[carpark_id]) / FRAME_BUDGET))

    def add(self, carpark_id: int, kind: str, data: dict) -> None:
        if not self.subscribers[carpark_id]:
            return  # nobody watches here any more: no delta, no recount (a new socket starts from a snapshot)
        self.pending.setdefault(carpark_id, Delta()).add(kind, data)
        if carpark_id in self.scheduled:
            return
        self.scheduled.add(carpark_id)
        wait = max(0.0, self.last_flush[carpark_id] + self.interval(carpark_id) - time.monotonic())
        if wait == 0:
            self._spawn(self._flush(carpark_id))
        else:
            asyncio.get_running_loop().call_later(wait, lambda: self._spawn(self._flush(carpark_id)))

    async def _flush(self, carpark_id: int) -> None:
        self.scheduled.discard(carpark_id)
        self.last_flush[carpark_id] = time.monotonic()
        delta = self.pending.pop(carpark_id, None)
        if not delta:
            return
        # Flushes are written in the order they took their events: a slow one (a recount, a big write) is never
        # overtaken by the next, whose newer state it would then overwrite on screen.
        async with self.writing[carpark_id]:
            if delta.needs_count:
                delta.occupancy = await self._occupancy(carpark_id, delta.occupancy)
            if delta.occupancy is not None:
                self.sent_occupancy[carpark_id] = delta.occupancy
                self.joined.discard(carpark_id)
            text = json.dumps(delta.frame(carpark_id, self.codes[carpark_id]))
            await self._write(self.subscribers[carpark_id], text, self.interval(carpark_id))

    async def _write(self, subscribers: set[Subscriber], text: str, interval: float) -> None:
        """The same text to every socket, SLICE sockets at a time, the slices paced over min(SPREAD_S, interval/2).

        Writing 500 frames in one go holds the loop (and the GIL the lanes' decision threads need) for tens of
        milliseconds: every decision that falls in it waits. Paced, the loop is busy a millisecond at a time and
        sleeps between slices, so decisions (and the sockets' writes Twisted makes on the next loop turn) run in
        between; the CPU is the same, the decisions' tail is not (bench/dashboard.py)."""
        targets = list(subscribers)
        slices = -(-len(targets) // SLICE)
        pause = min(SPREAD_S, interval / 2) / slices if slices > 1 else 0.0
        for start in range(0, len(targets), SLICE):
            if start:
                await asyncio.sleep(pause)
            for subscriber in targets[start : start + SLICE]:
                try:
                    await subscriber.deliver(text)
                    self.frames_sent += 1
                except Exception:
                    log.exception("dashboards: a delta could not be delivered")

    async def _occupancy(self, carpark_id: int, reported: int | None) -> int | None:
        """The occupancy now, counted once per flush for all of this process's dashboards.

        The count an `occupancy` event carries was taken inside its own transaction, so two entries committing at
        the same time can both report the same number and the larger one never comes. Every event here was sent
        after its commit, so a count taken now includes all of them.
        """
        try:
            return await run_sync(selectors.carpark_occupancy, carpark_id=carpark_id)
        except Exception as exc:  # database unavailable: the event's own figure is the best there is
            log.warning("dashboards: occupancy not counted (%s)", exc)
            return reported

    async def _resync(self, carpark_id: int) -> None:
        for subscriber in list(self.subscribers[carpark_id]):
            try:
                await subscriber.resync()
            except Exception:
                log.exception("dashboards: a resync failed")


_fanouts: dict[asyncio.AbstractEventLoop, CarparkFanout] = {}


def fanout() -> CarparkFanout:
    """This process's fan-out for the running event loop (created on first use)."""
    loop = asyncio.get_running_loop()
    instance = _fanouts.get(loop)
    if instance is None:
        for stale in [other for other in _fanouts if other.is_closed()]:
            del _fanouts[stale]
        instance = _fanouts[loop] = CarparkFanout(get_channel_layer(), settings.DASHBOARD_FLUSH_S)
    return instance
