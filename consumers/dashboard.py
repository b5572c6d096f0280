"""Staff dashboard WebSocket: a snapshot on connect, then coalesced live deltas for the car parks the user may watch.

Authorisation is the page's: the session's user (AuthMiddlewareStack; the Origin must be one of
STAFF_ORIGINS, project/routing.py) and their operator/supervisor assignments. It is checked again
whenever the user logs out or their roles change (a `staff.<user id>` event) and every RECHECK_S as a safety net;
a socket that lost its right is told `revoked` and closed with 4403, and the page reloads (to the login form).

Frames to the browser: `snapshot` {"carparks": [...]} and `delta` (see consumers/fanout.py). From the browser:
`{"type": "resync"}` asks for a new snapshot (at most one per RESYNC_EVERY_S per socket). Database reads run in
pooled threads (run_sync), never on Channels' shared ORM thread where the lane controllers' decisions run.
"""

import asyncio
import json
import logging
import random

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import DEFAULT_CHANNEL_LAYER
from django.conf import settings

from apps.core import metrics
from apps.core.concurrency import run_sync
from apps.core.events import carpark_group, carpark_messages, staff_group
from apps.staff import selectors, twofactor
from consumers.fanout import fanout, single_event_frame
from consumers.snapshots import snapshots

log = logging.getLogger(__name__)

CLOSE_FORBIDDEN = 4403  # logged out or lost the role: the page reloads instead of retrying
RECHECK_S = 120
MAX_HELD = 50  # deltas held back while the snapshot loads
RESYNC_EVERY_S = 2.0  # a socket's own resync asks get at most one snapshot this often (each costs its queries)


# An alias that is not configured: get_channel_layer() gives None, so a socket does not listen on the channel layer
# itself; this process's fan-out (consumers/fanout.py) listens once for all of them. DASHBOARD_FANOUT=direct (the
# benchmark's baseline) gives every socket its own channel and group memberships instead.
NO_CHANNEL_LAYER = "dashboard sockets listen through the fan-out"


async def snapshot_frame(carpark_ids: list[int]) -> str:
    carparks = await run_sync(selectors.dashboard_snapshot, carpark_ids=carpark_ids)
    return json.dumps({"type": "snapshot", "carparks": carparks})


class DashboardConsumer(AsyncWebsocketConsumer):
    channel_layer_alias = DEFAULT_CHANNEL_LAYER if settings.DASHBOARD_FANOUT == "direct" else NO_CHANNEL_LAYER
    user_id: int | None = None
    session_key: str | None = None
    carpark_ids: list[int] = ()
    codes: dict[int, str]
    held: list[str] | None = None  # deltas that arrived before the snapshot went out
    last_occupancy: dict[int, int]  # direct mode: the last count per car park an event carried
    recheck_task: asyncio.Task | None = None
    resync_task: asyncio.Task | None = None  # a resync ask held until RESYNC_EVERY_S after the last snapshot
    last_snapshot_at = float("-inf")  # loop time the last snapshot went out
    snapshotting: asyncio.Lock
    subscribed = False
    watching_staff = False
    counted = False  # in the open-connections gauge

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close()  # before accept: HTTP 403
            return
        self.user_id = user.pk
        self.session_key = getattr(self.scope.get("session"), "session_key", None)
        session = self.scope.get("session")
        if settings.STAFF_TWO_FACTOR and await run_sync(
            twofactor.session_lacks_second_factor, user=user, session=session
        ):
            await self.close()  # signed in with the password only: the second step first (HTTP 403)
            return
        self.carpark_ids = await run_sync(selectors.carpark_ids_for_user, user_id=user.pk)
        if not self.carpark_ids:
            await self.close()
            return
        await self.watch_staff()
        await self.accept()
        self.counted = True
        metrics.websocket_connections.labels("dashboard").inc()
        self.held = []
        self.snapshotting = asyncio.Lock()
        self.last_occupancy = {}
        tiles = await run_sync(selectors.carpark_tiles, carpark_ids=self.carpark_ids)
        self.codes = {t["id"]: t["code"] for t in tiles}
        await self.subscribe()
        await self.send_snapshot()
        self.recheck_task = asyncio.get_running_loop().create_task(self.recheck_periodically())

    async def disconnect(self, code: int) -> None:
        if self.counted:
            metrics.websocket_connections.labels("dashboard").dec()
            self.counted = False
        for task in (self.recheck_task, self.resync_task):
            if task is not None:
                task.cancel()
        if self.subscribed:
            await self.unsubscribe()
        if self.user_id is not None and self.watching_staff:
            if self.direct:
                await self.channel_layer.group_discard(staff_group(self.user_id), self.channel_name)
            else:
                await fanout().unwatch_staff(self.user_id, self)

    async def watch_staff(self) -> None:
        """Hear about this user's logout and role changes (Redis down: the periodic recheck still applies)."""
        try:
            if self.direct:
                await self.channel_layer.group_add(staff_group(self.user_id), self.channel_name)
            else:
                await fanout().watch_staff(self.user_id, self)
            self.watching_staff = True
        except Exception as exc:
            log.warning("dashboard: staff events unavailable (%s)", exc)

    # --- live updates ---------------------------------------------------------------------------------------------

    @property
    def direct(self) -> bool:
        return settings.DASHBOARD_FANOUT == "direct"

    async def subscribe(self) -> None:
        for carpark_id in self.carpark_ids:
            if self.direct:
                await self.channel_layer.group_add(carpark_group(carpark_id), self.channel_name)
            else:
                await fanout().subscribe(carpark_id, self.codes[carpark_id], self)
        self.subscribed = True

    async def unsubscribe(self) -> None:
        self.subscribed = False
        for carpark_id in self.carpark_ids:
            if self.direct:
                await self.channel_layer.group_discard(carpark_group(carpark_id), self.channel_name)
            else:
                fanout().unsubscribe(carpark_id, self)

    async def deliver(self, text: str) -> None:
        """A coalesced delta from the fan-out (or one event, in direct mode)."""
        if self.held is not None:
            if len(self.held) < MAX_HELD:
                self.held.append(text)
            return
        await self.send(text_data=text)

    async def resync(self) -> None:
        await self.send_snapshot()

    async def carpark_event(self, message: dict) -> None:
        """Only in direct mode (the benchmark's baseline): every event to every socket, as it comes, one frame each.
        An occupancy event without a count (`null`: changed, not counted) carries the last count this socket saw."""
        for kind, data in carpark_messages(message):
            carpark_id = next((cid for cid, code in self.codes.items() if code == data.get("carpark")), None)
            carpark_id = carpark_id or self.carpark_ids[0]
            if kind == "occupancy":
                if data.get("occupancy") is None:
                    data = data | {"occupancy": self.last_occupancy.get(carpark_id)}
                else:
                    self.last_occupancy[carpark_id] = data["occupancy"]
            await self.deliver(single_event_frame(carpark_id, self.codes[carpark_id], kind, data))

    carpark_events = carpark_event  # several events sent together (apps/core/events.py), oldest first

    async def send_snapshot(self) -> None:
        """A snapshot, then the deltas that arrived while it loaded. One at a time (connect, the page's resync and the
        fan-out's may meet): a second one sent ahead of the deltas the first held would rewind the page."""
        async with self.snapshotting:
            if self.held is None:
                self.held = []
            await self.send(text_data=await snapshots(snapshot_frame).get(self.carpark_ids))
            self.last_snapshot_at = asyncio.get_running_loop().time()
            held, self.held = self.held, None
            for text in held:
                await self.send(text_data=text)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            frame = json.loads(text_data or "")
        except ValueError:
            return
        if isinstance(frame, dict) and frame.get("type") == "resync":
            await self.resync_asked()

    async def resync_asked(self) -> None:
        """The page asks for a snapshot: at once if the last went out RESYNC_EVERY_S ago, else when that time is up,
        one for every ask in between. A flood of frames costs a snapshot per interval, and no ask goes unanswered."""
        if self.resync_task is not None:
            return  # the held one answers this ask too
        wait = self.last_snapshot_at + RESYNC_EVERY_S - asyncio.get_running_loop().time()
        if wait <= 0:
            await self.send_snapshot()
        else:
            self.resync_task = asyncio.get_running_loop().create_task(self.resync_later(wait))

    async def resync_later(self, wait: float) -> None:
        await asyncio.sleep(wait)
        try:
            await self.send_snapshot()
        except Exception as exc:  # database unavailable: the page asks again (or reconnects)
            log.warning("dashboard: a held resync failed (%s)", exc)
        finally:
            self.resync_task = None

    # --- permissions on the open socket ---------------------------------------------------------------------------

    async def staff_event(self, message: dict) -> None:
        kind, data = message.get("kind"), message.get("data") or {}
        if kind == "logout" and data.get("session") in (None, self.session_key):
            await self.revoke()
        elif kind == "roles":
            await self.recheck()

    async def recheck(self) -> None:
        """Close the socket if the login ended or the car parks it watches are no longer exactly the user's."""
        still_logged_in = await run_sync(selectors.session_is_current, session_key=self.session_key)
        carpark_ids = await run_sync(selectors.carpark_ids_for_user, user_id=self.user_id)
        if not still_logged_in or sorted(carpark_ids) != sorted(self.carpark_ids):
            await self.revoke()

    async def revoke(self) -> None:
        if self.subscribed:
            await self.unsubscribe()
        await self.send(text_data=json.dumps({"type": "revoked"}))
        await self.close(code=CLOSE_FORBIDDEN)

    async def recheck_periodically(self) -> None:
        while True:
            await asyncio.sleep(RECHECK_S * random.uniform(0.8, 1.2))
            try:
                await self.recheck()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database unavailable: keep the socket, try again later
                log.warning("dashboard: permission recheck failed (%s)", exc)
