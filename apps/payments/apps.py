from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "apps.payments"
    label = "payments"
    verbose_name = "Card payments"

    def ready(self) -> None:
        from apps.payments import receivers

        receivers.connect()
