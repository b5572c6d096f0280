from django.apps import AppConfig


class MailConfig(AppConfig):
    name = "apps.mail"
    label = "mail"

    def ready(self) -> None:
        from apps.mail import checks  # noqa: F401  (registers the deploy checks)
