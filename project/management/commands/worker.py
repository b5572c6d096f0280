"""`manage.py worker`: an arq worker for background and periodic jobs. Any number may run (needs REDIS_URL).

arq's worker stops when it loses Redis; this command starts it again (1 s doubling to 30 s), so that a Redis
restart never needs a person or a process supervisor: jobs queued meanwhile, and the periodic sweeps that re-find
work stored while the queue was away, run as soon as Redis is back.
"""

import logging
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from redis.exceptions import RedisError

from apps.core.jobs import arq_worker_settings

log = logging.getLogger("parkgate.worker")
RETRY_MAX_S = 30.0
HEALTHY_RUN_S = 60.0  # a worker that ran this long before losing Redis starts its back-off afresh


class Command(BaseCommand):
    help = "Run an arq worker for Parkgate's background and scheduled jobs (needs REDIS_URL)."

    def add_arguments(self, parser):
        parser.add_argument("--burst", action="store_true", help="run the queued jobs, then exit")

    def handle(self, *args, **options):
        if not settings.REDIS_URL:
            raise CommandError("REDIS_URL is not set: without Redis, `manage.py serve` runs the jobs itself.")
        from arq.worker import Worker

        delay = 1.0
        while True:
            started = time.monotonic()
            try:
                Worker(**arq_worker_settings(), burst=options["burst"]).run()
                return  # stopped by a signal, or a burst finished
            except (RedisError, OSError) as exc:
                if options["burst"]:
                    raise CommandError(f"Redis is unavailable: {exc}") from None
                if time.monotonic() - started > HEALTHY_RUN_S:
                    delay = 1.0
                log.warning("lost Redis (%s): the worker starts again in %.0f s", exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
