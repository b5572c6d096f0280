"""The lane controller WebSocket (device-protocol.md 2-5): authenticate, parse, call the access services, reply.

Design notes (why it is not a plain AsyncWebsocketConsumer):
- Decisions go through apps.access.decision (its own decision threads, reads batched), not Channels' one shared
  database thread, and several reads of one controller are decided concurrently (it may have up to 32 in flight).
- The channel layer (Redis) only carries nudges: revocation, replacement, new settings, allow-lists, manual
  commands. When Redis is down its receive is retried in the background and the connection stays up. Closing the
  connection never cancels the layer's receive, which would lose other channels' messages (device_gateway/layer.py's
  LayerConsumer, this consumer's base).
- Channels' per-message `close_old_connections` hop to the shared thread is skipped: every database call here
  runs in an executor thread that cleans up its own connection.
"""

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from datetime import UTC, datetime

from django.db import DatabaseError

from apps.access import clock, decision, selectors, services
from apps.core import metrics
from apps.core.events import device_group
from device_gateway import codec
from device_gateway.executor import run_db
from device_gateway.layer import LayerConsumer

log = logging.getLogger(__name__)

CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_UNSUPPORTED_PROTOCOL = 4002
CLOSE_TOO_MANY_ERRORS = 4008
CLOSE_REPLACED = 4009
CLOSE_REVOKED = 4401

SILENCE_S = 60  # no frame for this long: offline (device-protocol.md 2)
TOUCH_EVERY_S = 20  # refresh last_seen_at at least this often while frames arrive
MAX_ERRORS_PER_MINUTE = 20
MAX_IN_FLIGHT = 32
RECORD_EVERY_S = 1  # at most one heartbeat recorded per connection in this time: later ones fold into the next

# This process's live connections by device id: a second connection replaces the first even without Redis.
_live: dict[str, "DeviceConsumer"] = {}


def bearer_token(scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            kind, _, token = value.decode("latin-1").partition(" ")
            if kind.lower() == "bearer":
                return token.strip()
    return ""


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class DeviceConsumer(LayerConsumer):
    device: selectors.DeviceIdentity | None = None
    greeted = False
    closing = False
    settings_pending = False  # a settings nudge met a database outage: the next heartbeat sends the welcome
    counted = False  # in the open-connections gauge

    def _device_id(self) -> str:
        return self.device.id if self.device else "?"

    # --- Connection lifecycle ----------------------------------------------------------------------------------------

    async def connect(self) -> None:
        try:
            self.device = await run_db(selectors.device_for_token, token=bearer_token(self.scope))
        except DatabaseError:
            await self.accept()
            await self.close(code=CLOSE_TRY_AGAIN_LATER)
            return
        if self.device is None:
            await self.close()  # before accept: the upgrade is refused with HTTP 403
            return
        self.connection_id = uuid.uuid4().hex
        self.token_hash = self.device.token_hash  # kept: a new welcome reloads the identity, perhaps rotated
        self.errors: deque[float] = deque()
        self.in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
        self.tasks: set[asyncio.Task] = set()
        self.last_frame = self.last_touch = time.monotonic()
        self.silent = False
        self.barriers: dict[str, str] = {}  # as last recorded
        self.reported: dict[str, str] = {}  # as last reported, recorded by self.recorder (_record_life)
        self.touch_due, self.recorder, self.stop_recording = False, None, asyncio.Event()
        self.allowlist_version = 0
        previous = _live.get(self.device.id)
        _live[self.device.id] = self
        if previous is not None:
            await previous.replaced()
        group = device_group(self.device.id)
        await self._layer("group_add", group, self.channel_name)
        # Connections to other server processes with the same token close themselves on this message.
        await self._layer("group_send", group, {"type": "device.replace", "connection_id": self.connection_id})
        await self.accept()
        self.counted = True
        metrics.websocket_connections.labels("device").inc()
        self.watchdog = asyncio.create_task(self._watch_silence())

    async def replaced(self) -> None:
        if not self.closing:
            self.closing = True
            await self.close(code=CLOSE_REPLACED)

    async def disconnect(self, code: int) -> None:
        if self.counted:
            metrics.websocket_connections.labels("device").dec()
            self.counted = False
        if self.device is None or not hasattr(self, "connection_id"):
            return
        self.closing = True
        self.watchdog.cancel()
        self.stop_recording.set()
        if self.recorder is not None:  # its write in flight, and the last state reported, before going offline
            await asyncio.gather(self.recorder, return_exceptions=True)
        if _live.get(self.device.id) is self:
            del _live[self.device.id]
        await self._layer("group_discard", device_group(self.device.id), self.channel_name)
        marked = await self._mark_offline() if self.greeted else False
        log.info("device %s: connection %s closed (%s)%s", self.device.id, self.connection_id, code,
                 ", offline" if marked else "")  # fmt: skip

    async def _mark_offline(self) -> bool:
        """Whether this connection's device is now marked offline (not when a newer connection holds it)."""
        try:
            return await run_db(
                services.device_disconnected, device_id=self.device.id, connection_id=self.connection_id
            )
        except DatabaseError:
            log.warning("device %s: offline state not saved (database unavailable)", self.device.id)
            return False

    async def _watch_silence(self) -> None:
        """No frame for 60 s: the device is offline (the connection stays open; a frame brings it back)."""
        while True:
            wait = self.last_frame + SILENCE_S - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            if self.greeted and not self.silent:
                self.silent = True
                log.info("device %s: no frame for %s s, offline", self.device.id, SILENCE_S)
                await self._mark_offline()
            await asyncio.sleep(1)

    # --- Frames from the controller --------------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closing:
            return
        self.last_frame = time.monotonic()
        try:
            if text_data is None:
                raise codec.ProtocolError("bad_message", "frames are JSON text, not binary")
            frame = codec.decode(text_data)
            await self.dispatch_frame(frame)
        except codec.ProtocolError as exc:
            await self.send_error(exc)

    async def dispatch_frame(self, frame: dict) -> None:
        kind = frame["type"]
        if kind == "hello":
            await self.on_hello(frame)
            return
        if not self.greeted:
            raise codec.ProtocolError("hello_first", "the first frame must be hello", _read_id(frame))
        if self.silent or time.monotonic() - self.last_touch > TOUCH_EVERY_S:
            self._want_touch()
        if kind == "plate_read":
            read = codec.parse_plate_read(frame)
            if read.lane not in self.device.lanes:
                raise codec.ProtocolError(
                    "unknown_lane", f"lane {read.lane!r} is not one of this device's", read.read_id
                )
            await self.in_flight.acquire()
            # Started eagerly: the read runs up to its first wait for the database (its statements are sent) before
            # this connection's next frame is read, rather than on the loop's next turn.
            task = asyncio.eager_task_factory(asyncio.get_running_loop(), self.on_plate_read(read))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        elif kind == "heartbeat":
            sent_at = codec.parse_sent_at(frame)
            await self.on_heartbeat(codec.parse_heartbeat(frame))
            if sent_at is not None:
                await self.on_clock(sent_at)
        elif kind == "command_result":
            await self.on_command_result(codec.parse_command_result(frame))
        else:
            raise codec.ProtocolError("bad_message", f"unknown type {kind!r}", _read_id(frame))

    async def on_hello(self, frame: dict) -> None:
        try:
            hello = codec.parse_hello(frame)
        except codec.ProtocolError as exc:
            if exc.code != "unsupported_protocol":
                raise  # a bad_message like any other frame's: the connection stays, the error counts
            await self.send_frame(exc.frame())
            self.closing = True
            await self.close(code=CLOSE_UNSUPPORTED_PROTOCOL)
            return
        try:
            await run_db(
                services.device_connected,
                device_id=self.device.id,
                connection_id=self.connection_id,
                firmware=hello.firmware,
            )
        except DatabaseError:
            raise codec.ProtocolError("retry", "cannot record the connection now, send hello again later") from None
        self.greeted, self.silent, self.last_touch = True, False, time.monotonic()
        log.info("device %s: online on connection %s (firmware %s)", self.device.id, self.connection_id, hello.firmware)
        await self.send_welcome()
        await self.send_allowlist(after_welcome=True)

    async def send_welcome(self) -> None:
        await self.send_frame(
            {
                "type": "welcome",
                "device_id": self.device.id,
                "carpark": self.device.carpark_code,
                "server_time": utc_now_iso(),
                "lanes": [{"code": code, "direction": d} for code, d in self.device.lanes.items()],
                "settings": self.device.settings,
            }
        )

    async def send_allowlist(self, *, after_welcome: bool = False) -> None:
        """The offline allow-list and block list (device-protocol.md 5): after every welcome answering a hello (a
        second hello gets them again, at whatever version), and on each new version."""
        try:
            allowlist = await run_db(services.allowlist_current, carpark_id=self.device.carpark_id)
        except DatabaseError:
            log.warning("device %s: allow-list not sent (database unavailable)", self.device.id)
            return
        if after_welcome or allowlist.version > self.allowlist_version:
            self.allowlist_version = allowlist.version
            for frame in allowlist.frames():
                await self.send_frame(frame)

    async def on_plate_read(self, read: codec.PlateRead) -> None:
        started = time.perf_counter()
        arguments = {
            "device_id": self.device.id,
            "read_id": read.read_id,
            "lane_id": self.device.lane_ids[read.lane],
            "plate": read.plate,
            "score": read.score,
            "captured_at": read.captured_at,
            "candidates": list(read.candidates),
            "region": read.region,
            "vehicle": read.vehicle,
            "retransmit": read.retransmit,
            "local_action": read.local_action,
        }
        try:
            decided = await decision.decide(**arguments)
        except Exception as exc:  # the database is down or busy: the controller resends later; never guess
            if not isinstance(exc, DatabaseError):
                log.exception("device %s: read %s could not be decided", self.device.id, read.read_id)
            await self.send_error(codec.ProtocolError("retry", "cannot decide now, resend later", read.read_id))
            return
        finally:
            self.in_flight.release()
        metrics.decision_observed(decided, seconds=time.perf_counter() - started)
        await self.send_frame(decided)
        if not (read.retransmit or read.local_action):  # a live read's capture time, after its answer
            await self.on_clock(read.captured_at)

    async def on_heartbeat(self, barriers: dict[str, str]) -> None:
        unknown = set(barriers) - set(self.device.lanes)
        if unknown:
            raise codec.ProtocolError("unknown_lane", f"lane(s) {', '.join(sorted(unknown))} are not this device's")
        self.reported = barriers
        self._want_touch()

    def _want_touch(self) -> None:
        """Record life and the reported barriers soon, without holding up this connection's frames."""
        self.touch_due = True
        if self.recorder is None or self.recorder.done():
            self.recorder = asyncio.create_task(self._record_life())

    async def _record_life(self) -> None:
        """One heartbeat recorded at once, then at most one per RECORD_EVERY_S with the latest barrier states: a
        flood of heartbeats (changing or not) costs a few writes, not one each, and never waits for the database."""
        while self.touch_due:
            self.touch_due = False
            await self._touch(self.reported)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_recording.wait(), RECORD_EVERY_S)

    async def on_clock(self, sent_at: datetime) -> None:
        """The controller's clock against the server's, from a heartbeat's `sent_at` or a live read's `captured_at`
        (shown to staff; stored only when it changed, apps.access.clock.worth_recording)."""
        offset = clock.offset_s(device_time=sent_at, now=datetime.now(UTC))
        if clock.worth_recording(self.device.id, offset):
            with contextlib.suppress(DatabaseError):  # only a measurement: the next heartbeat measures again
                await run_db(clock.device_clock_record, device_id=self.device.id, offset_s=offset)

    async def _touch(self, barriers: dict[str, str]) -> None:
        """Record that the device is alive (and its barriers); re-checks revocation (device-protocol.md 2)."""
        self.barriers = barriers
        try:
            status = await run_db(
                services.device_heartbeat, device_id=self.device.id, connection_id=self.connection_id,
                token_hash=self.token_hash, barriers=barriers,
            )  # fmt: skip
        except DatabaseError:
            return  # the database is down: the heartbeat is still a sign of life, nothing to record
        self.last_touch, self.silent = time.monotonic(), False
        if status == services.REVOKED:
            await self.revoked()
        elif status == services.REPLACED:
            await self.replaced()
        elif self.settings_pending:
            await self.send_new_settings()

    async def on_command_result(self, result: codec.CommandResult) -> None:
        try:
            await run_db(
                services.command_result_record,
                device_id=self.device.id,
                command_id=result.command_id,
                status=result.status,
                detail=result.detail,
            )
        except services.UnknownCommand:
            raise codec.ProtocolError("bad_message", f"unknown command_id {result.command_id!r}") from None
        except DatabaseError:
            raise codec.ProtocolError("retry", "cannot record the result now, send it again later") from None

    # --- Errors ----------------------------------------------------------------------------------------------------

    async def send_error(self, error: codec.ProtocolError) -> None:
        await self.send_frame(error.frame())
        if error.code == "retry":
            return
        now = time.monotonic()
        self.errors.append(now)
        while self.errors and self.errors[0] < now - 60:
            self.errors.popleft()
        if len(self.errors) > MAX_ERRORS_PER_MINUTE and not self.closing:
            self.closing = True
            await self.close(code=CLOSE_TOO_MANY_ERRORS)

    # --- Messages from the rest of Parkgate (channel layer group device.<id>) ----------------------------------------

    async def device_replace(self, message: dict) -> None:
        if message.get("connection_id") != getattr(self, "connection_id", None):
            await self.replaced()

    async def device_event(self, message: dict) -> None:
        kind = message["kind"]
        if kind == "revoked":
            await self.revoked()
        elif kind == "token_rotated":
            await self.check_token()
        elif not self.greeted or self.closing:
            return
        elif kind == "welcome":
            await self.send_new_settings()
        elif kind == "allowlist":
            if message["data"].get("version", 0) > self.allowlist_version:
                await self.send_allowlist()
        elif kind == "command":
            await self.send_frame(message["data"])

    async def send_new_settings(self) -> None:
        """Staff changed the car park's settings: a new `welcome` with them (device-protocol.md 2). If the database
        cannot be read now, the connection carries on with the settings it knows (it stays up, spec 2) and the
        welcome goes once a heartbeat (or any frame that records life) reaches the database again."""
        try:
            identity = await run_db(selectors.device_identity_by_id, device_id=self.device.id)
        except DatabaseError:
            self.settings_pending = True
            log.warning(
                "device %s: new settings not sent (database unavailable); sent on a later heartbeat", self.device.id
            )
            return
        self.settings_pending = False
        if identity is None:
            await self.revoked()
            return
        self.device = identity
        await self.send_welcome()

    async def check_token(self) -> None:
        """The device enrolled again: this connection closes (4009) if it was opened with the old token. The new
        controller may already be connected with the new one, so the event alone does not say which this is."""
        try:
            current = await run_db(
                selectors.device_token_is_current, device_id=self.device.id, token_hash=self.token_hash
            )
        except DatabaseError:
            return  # the next heartbeat checks again
        if not current:
            await self.replaced()

    async def revoked(self) -> None:
        if not self.closing:
            self.closing = True
            await self.close(code=CLOSE_REVOKED)

    async def send_frame(self, frame: dict) -> None:
        try:
            await self.send(text_data=codec.encode(frame))
        except Exception as exc:  # the connection closed meanwhile: the controller will resend unanswered reads
            log.debug("device %s: frame not sent: %s", self._device_id(), exc)


def _read_id(frame: dict) -> str | None:
    read_id = frame.get("read_id")
    return read_id if isinstance(read_id, str) else None
