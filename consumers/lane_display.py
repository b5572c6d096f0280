"""A lane display's WebSocket (`/ws/display/<lane id>/?token=...`, the page's own display token; no session, no
Origin: the token is the key, as for a lane controller). On connecting, and on every `lane.<id>` event (an overstay
held or paid there, apps.core.events.publish_to_lane), the socket sends the display's state as HTML:
{"type": "display", "html": ...}. It listens through this process's fan-out (consumers/fanout.py), never on the
channel layer itself."""

import json
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer

from apps.core.concurrency import run_sync
from apps.payments import overstay
from apps.payments.display import lane_display_state
from consumers.dashboard import CLOSE_FORBIDDEN, NO_CHANNEL_LAYER
from consumers.fanout import CarparkFanout, fanout


class LaneDisplayConsumer(AsyncWebsocketConsumer):
    channel_layer_alias = NO_CHANNEL_LAYER
    lane_id: int | None = None

    async def connect(self) -> None:
        lane_id = int(self.scope["url_route"]["kwargs"]["lane_id"])
        token = parse_qs(self.scope.get("query_string", b"").decode()).get("token", [""])[0]
        if not await run_sync(overstay.lane_display_allowed, lane_id=lane_id, token=token):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self.accept()
        self.lane_id = lane_id
        await fanout().watch(CarparkFanout.DISPLAYS, lane_id, self)  # joined first: no event falls before the state
        await self.lane_event({})

    async def disconnect(self, code) -> None:
        if self.lane_id is not None:
            await fanout().unwatch(CarparkFanout.DISPLAYS, self.lane_id, self)

    async def receive(self, text_data=None, bytes_data=None) -> None:
        pass  # the screen only listens

    def _absolute(self, path: str) -> str:
        headers = dict(self.scope.get("headers") or [])
        scheme = "https" if self.scope.get("scheme") == "wss" else "http"
        return f"{scheme}://{headers.get(b'host', b'localhost').decode()}{path}"

    async def lane_event(self, message: dict) -> None:
        html = await run_sync(lane_display_state, lane_id=self.lane_id, absolute=self._absolute)
        await self.send(text_data=json.dumps({"type": "display", "html": html}))
