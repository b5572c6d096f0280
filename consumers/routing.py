from django.urls import path

from consumers.dashboard import DashboardConsumer
from consumers.lane_display import LaneDisplayConsumer

# Mounted under `ws/dashboard/` by project/routing.py (behind the Origin check and session auth); the nested
# URLRouter matches what remains of the path after that prefix, i.e. "".
websocket_urlpatterns = [path("", DashboardConsumer.as_asgi())]

# Lane displays (the screens at the barriers): token in the query string, no session, so outside the staff stack.
display_urlpatterns = [path("ws/display/<int:lane_id>/", LaneDisplayConsumer.as_asgi())]
