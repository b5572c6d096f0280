from django.apps import AppConfig


class InsightConfig(AppConfig):
    name = "apps.insight"
    label = "insight"
    verbose_name = "Insight (reports, forecast, overbooking)"

    def ready(self) -> None:
        from apps.insight import receivers

        receivers.connect()
