"""The lane controller WebSocket (device-protocol.md 2-4): authenticate, parse, call the access services, reply."""

import logging
from datetime import UTC, datetime

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.db import DatabaseError

from apps.access import selectors, services
from apps.core.events import device_group
from device_gateway import codec

log = logging.getLogger(__name__)

CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_UNSUPPORTED_PROTOCOL = 4002
CLOSE_REVOKED = 4401


def bearer_token(scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            kind, _, token = value.decode("latin-1").partition(" ")
            if kind.lower() == "bearer":
                return token.strip()
    return ""


class DeviceConsumer(AsyncWebsocketConsumer):
    device: selectors.DeviceIdentity | None = None
    greeted = False

    async def connect(self) -> None:
        try:
            self.device = await database_sync_to_async(selectors.device_for_token)(token=bearer_token(self.scope))
        except DatabaseError:
            await self.accept()
            await self.close(code=CLOSE_TRY_AGAIN_LATER)
            return
        if self.device is None:
            await self.close()  # before accept: the upgrade is refused with HTTP 403
            return
        await self.channel_layer.group_add(device_group(self.device.id), self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.device is None:
            return
        await self.channel_layer.group_discard(device_group(self.device.id), self.channel_name)
        if self.greeted:
            try:
                await database_sync_to_async(services.device_set_online)(device_id=self.device.id, online=False)
            except DatabaseError:
                log.warning("device %s: offline state not saved (database unavailable)", self.device.id)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            if text_data is None:
                raise codec.ProtocolError("bad_message", "frames are JSON text, not binary")
            frame = codec.decode(text_data)
            await self.dispatch_frame(frame)
        except codec.ProtocolError as exc:
            await self.send_frame(exc.frame())

    async def dispatch_frame(self, frame: dict) -> None:
        kind = frame["type"]
        if kind == "hello":
            await self.on_hello(frame)
        elif not self.greeted:
            raise codec.ProtocolError("hello_first", "the first frame must be hello", frame.get("read_id"))
        elif kind == "plate_read":
            await self.on_plate_read(codec.parse_plate_read(frame))
        elif kind == "heartbeat":
            pass
        else:
            raise codec.ProtocolError("bad_message", f"unknown type {kind!r}", frame.get("read_id"))

    async def on_hello(self, frame: dict) -> None:
        if frame.get("protocol") != codec.PROTOCOL_VERSION:
            await self.send_frame(
                {"type": "error", "code": "unsupported_protocol", "detail": "this server speaks protocol 1"}
            )
            await self.close(code=CLOSE_UNSUPPORTED_PROTOCOL)
            return
        firmware = frame.get("firmware") if isinstance(frame.get("firmware"), str) else None
        await database_sync_to_async(services.device_set_online)(
            device_id=self.device.id, online=True, firmware=firmware
        )
        self.greeted = True
        await self.send_frame(
            {
                "type": "welcome",
                "device_id": self.device.id,
                "carpark": self.device.carpark_code,
                "server_time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "lanes": [{"code": code, "direction": d} for code, d in self.device.lanes.items()],
                "settings": self.device.settings,
            }
        )

    async def on_plate_read(self, read: codec.PlateRead) -> None:
        if read.lane not in self.device.lanes:
            raise codec.ProtocolError("unknown_lane", f"lane {read.lane!r} is not one of this device's", read.read_id)
        try:
            decision = await database_sync_to_async(services.plate_read_decide)(
                device_id=self.device.id,
                read_id=read.read_id,
                lane_code=read.lane,
                plate=read.plate,
                score=read.score,
                captured_at=read.captured_at,
                candidates=list(read.candidates),
                region=read.region,
                vehicle=read.vehicle,
                retransmit=read.retransmit,
                local_action=read.local_action,
            )
        except DatabaseError:
            raise codec.ProtocolError("retry", "cannot decide now, resend later", read.read_id) from None
        await self.send_frame(decision)

    async def device_event(self, message: dict) -> None:
        if message["kind"] == "revoked":
            await self.close(code=CLOSE_REVOKED)

    async def send_frame(self, frame: dict) -> None:
        await self.send(text_data=codec.encode(frame))
