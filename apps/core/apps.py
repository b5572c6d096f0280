from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"

    def ready(self) -> None:
        from django.utils.module_loading import autodiscover_modules

        from apps.core import checks  # noqa: F401  (registers the deploy checks)

        autodiscover_modules("jobs")  # every app's jobs.py registers its jobs (apps.core.jobs)
