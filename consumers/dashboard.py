"""Staff dashboard WebSocket: a snapshot on connect, then live deltas for the car parks the user may watch."""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.core.events import carpark_group
from apps.staff import selectors


class DashboardConsumer(AsyncJsonWebsocketConsumer):
    carpark_ids: list[int] = []

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close()
            return
        self.carpark_ids = await database_sync_to_async(selectors.carpark_ids_for_user)(user_id=user.pk)
        for carpark_id in self.carpark_ids:
            await self.channel_layer.group_add(carpark_group(carpark_id), self.channel_name)
        await self.accept()
        tiles = await database_sync_to_async(selectors.carpark_tiles)(carpark_ids=self.carpark_ids)
        await self.send_json(
            {"type": "snapshot", "carparks": [{"code": t["code"], "occupancy": t["occupancy"]} for t in tiles]}
        )

    async def disconnect(self, code: int) -> None:
        for carpark_id in self.carpark_ids:
            await self.channel_layer.group_discard(carpark_group(carpark_id), self.channel_name)

    async def carpark_event(self, message: dict) -> None:
        if message["kind"] == "occupancy":
            await self.send_json({"type": "occupancy", **message["data"]})
