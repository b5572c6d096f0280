from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"

    def ready(self) -> None:
        from django.utils.module_loading import autodiscover_modules

        from apps.core import checks, dbtime  # noqa: F401  (checks registers the deploy checks)

        dbtime.install()

        autodiscover_modules("jobs")  # every app's jobs.py registers its jobs (apps.core.jobs)
