from django.apps import AppConfig


class GroundConfig(AppConfig):
    """Work on the ground: the flight-status feed's tokens and API, meet-and-greet tasks, keys, condition photos,
    shift sheets."""

    name = "apps.ground"
    label = "ground"

    def ready(self) -> None:
        from apps.ground import receivers

        receivers.connect()
