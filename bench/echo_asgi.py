"""The baseline for bench/gateway.py: a bare Channels JSON echo consumer with Parkgate's settings (same channel
layer), served by daphne like `manage.py serve`. Bench-only: not part of the application."""

import json
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402  (after Django is set up)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402


class EchoConsumer(AsyncWebsocketConsumer):
    """Parses each JSON frame and sends it back: the protocol's framing without any decision."""

    async def receive(self, text_data=None, bytes_data=None):
        await self.send(text_data=json.dumps(json.loads(text_data)))


application = ProtocolTypeRouter({"http": django_asgi_app, "websocket": URLRouter([path("", EchoConsumer.as_asgi())])})
