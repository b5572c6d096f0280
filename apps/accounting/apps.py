from django.apps import AppConfig


class AccountingConfig(AppConfig):
    name = "apps.accounting"
    label = "accounting"
    verbose_name = "Accounting"

    def ready(self) -> None:
        from apps.accounting import receivers  # jobs.py is found by apps.core's autodiscovery

        receivers.connect()
