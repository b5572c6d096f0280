from django.apps import AppConfig


class CarparksConfig(AppConfig):
    name = "apps.carparks"
    label = "carparks"
