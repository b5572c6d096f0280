from django.urls import path

from consumers.dashboard import DashboardConsumer

# Mounted under `ws/dashboard/` by project/routing.py (behind the Origin check and session auth); the nested
# URLRouter matches what remains of the path after that prefix, i.e. "".
websocket_urlpatterns = [path("", DashboardConsumer.as_asgi())]
