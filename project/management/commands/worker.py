"""`manage.py worker`: an arq worker for background and periodic jobs. Any number may run (needs REDIS_URL)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.core.jobs import arq_worker_settings


class Command(BaseCommand):
    help = "Run an arq worker for Parkgate's background and scheduled jobs (needs REDIS_URL)."

    def add_arguments(self, parser):
        parser.add_argument("--burst", action="store_true", help="run the queued jobs, then exit")

    def handle(self, *args, **options):
        if not settings.REDIS_URL:
            raise CommandError("REDIS_URL is not set: without Redis, `manage.py serve` runs the jobs itself.")
        from arq.worker import Worker

        Worker(**arq_worker_settings(), burst=options["burst"]).run()
