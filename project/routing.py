"""WebSocket routing. Lane controllers authenticate by token (no Origin, no session); staff by session + Origin."""

from channels.auth import AuthMiddlewareStack
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import re_path


class RefuseConsumer(AsyncWebsocketConsumer):
    """Any other WebSocket path: refuse the upgrade (HTTP 403) instead of erroring."""

    async def connect(self) -> None:
        await self.close()


def build_application(django_asgi_app):
    from consumers.routing import websocket_urlpatterns as staff_patterns
    from device_gateway.routing import websocket_urlpatterns as device_patterns

    return ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": URLRouter(
                [
                    *device_patterns,
                    re_path(
                        r"^ws/dashboard/", AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(staff_patterns)))
                    ),
                    re_path(r"", RefuseConsumer.as_asgi()),
                ]
            ),
        }
    )
