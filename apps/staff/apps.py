from django.apps import AppConfig


class StaffConfig(AppConfig):
    name = "apps.staff"
    label = "staff"

    def ready(self) -> None:
        from apps.staff import sessions, signals, twofactor  # noqa: F401  (connects the receivers, registers the deploy check)
