"""A connection's channel-layer receive that closing the connection never cancels.

Why: channels-redis lets one receive at a time pop this process's messages from Redis, for all of the process's
channels, and hands each to its channel's buffer. A receive cancelled while its BZPOPMIN is under way loses the
message Redis hands it, whoever it was for (django/channels_redis#366): popped, never buffered. Channels cancels a
consumer's receive when its socket closes, so a lane controller hanging up could drop a dashboard event (that very
controller going offline), a manual open for another lane, or a revocation held by this process. Without this,
tests/lanes/test_layer.py loses 12 of its 100 messages on the real Redis layer.

So the layer's receive runs in a task of its own: a cancelled caller leaves it running, a later call picks it up,
and `stop` ends it the way a receive ends without losing anything, by sending its channel a message.
"""

import asyncio
import contextlib
import logging

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.utils import await_many_dispatch

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 2
LAYER_TIMEOUT_S = 2
STOP = {"type": "receiver.stop"}


class Receiver:
    def __init__(self, layer, channel: str):
        self.layer, self.channel = layer, channel
        self.pending: asyncio.Future | None = None

    async def receive(self) -> dict:
        """The channel's next message. Cancelling this call leaves the layer's receive running, and what it gets
        is the next call's."""
        if self.pending is None:
            self.pending = asyncio.ensure_future(self.layer.receive(self.channel))
        pending = self.pending
        try:
            message = await asyncio.shield(pending)
        except asyncio.CancelledError:
            if pending.cancelled():  # the receive itself (the loop is closing)
                self.pending = None
            raise
        except BaseException:  # the layer's error (Redis down): the next call receives afresh
            self.pending = None
            raise
        self.pending = None
        return message

    async def stop(self) -> None:
        """End the layer's receive left running, if any (the connection has closed)."""
        pending, self.pending = self.pending, None
        if pending is None or pending.done():
            return
        pending.add_done_callback(_retrieve)  # what it receives now is nobody's: this connection has gone
        try:
            await asyncio.wait_for(self.layer.send(self.channel, STOP), STOP_TIMEOUT_S)
        except Exception as exc:  # Redis down: the receive fails by itself
            log.warning("channel %s: receive not stopped (%s)", self.channel, exc)


def _retrieve(task: asyncio.Future) -> None:
    if not task.cancelled():
        task.exception()


class LayerConsumer(AsyncWebsocketConsumer):
    """A WebSocket consumer whose channel layer may fail without ending the connection, and whose closing never
    cancels the layer's receive (a `Receiver`). For the lane connections, which must outlive a Redis outage."""

    def _device_id(self) -> str:
        """Who the connection is, for the logs."""
        return "?"

    async def __call__(self, scope, receive, send):
        self.scope, self.base_send = scope, send
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        sources = [receive]
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
            self.layer_receiver = Receiver(self.channel_layer, self.channel_name)
            sources.append(self._channel_receive)
        try:
            with contextlib.suppress(StopConsumer):
                await await_many_dispatch(sources, self.dispatch)
        finally:
            if self.channel_layer is not None:
                await self.layer_receiver.stop()  # never cancelled: see device_gateway/layer.py

    async def _channel_receive(self) -> dict:
        delay = 0.5
        while True:
            try:
                return await self.layer_receiver.receive()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis down: keep the lane working, listen again later
                log.warning("device %s: channel layer unavailable (%s); retrying", self._device_id(), exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)

    async def dispatch(self, message: dict) -> None:
        handler = getattr(self, message["type"].replace(".", "_"), None)
        if handler is None:
            raise ValueError(f"no handler for message type {message['type']}")
        await handler(message)

    async def _layer(self, method: str, *args) -> None:
        """A channel layer call that never fails the connection (Redis may be down)."""
        try:
            await asyncio.wait_for(getattr(self.channel_layer, method)(*args), LAYER_TIMEOUT_S)
        except Exception as exc:
            log.warning("device %s: channel layer %s failed: %s", self._device_id(), method, exc)
