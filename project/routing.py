"""WebSocket routing. Lane controllers authenticate by token (no Origin, no session); staff by session + Origin
(one of STAFF_ORIGINS, not any allowed host: brand domains are allowed hosts).

A process serves the WebSocket routes in SERVE_WEBSOCKETS (`serve --websockets`) and refuses the others with 403:
lane controllers can be kept on processes of their own, away from dashboards (docs/architecture.md, Deployment).
"""

from channels.auth import AuthMiddlewareStack
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.urls import re_path


class RefuseConsumer(AsyncWebsocketConsumer):
    """Any other WebSocket path: refuse the upgrade (HTTP 403) instead of erroring."""

    async def connect(self) -> None:
        await self.close()


def build_application(django_asgi_app):
    from consumers.routing import display_urlpatterns
    from consumers.routing import websocket_urlpatterns as staff_patterns
    from device_gateway.routing import websocket_urlpatterns as device_patterns

    routes = []
    if "device" in settings.SERVE_WEBSOCKETS:
        routes += device_patterns
    if "dashboard" in settings.SERVE_WEBSOCKETS:
        staff = OriginValidator(AuthMiddlewareStack(URLRouter(staff_patterns)), settings.STAFF_ORIGINS)
        routes.append(re_path(r"^ws/dashboard/", staff))
        routes += display_urlpatterns  # the lanes' screens are dashboards too (a balancer sends /ws/ to this pool)
    return ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": URLRouter([*routes, re_path(r"", RefuseConsumer.as_asgi())]),
        }
    )
