from django.urls import path

from device_gateway.consumer import DeviceConsumer

websocket_urlpatterns = [path("ws/device/", DeviceConsumer.as_asgi())]
