import os

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import URLValidator

from apps.insight.history import history_seed
from project.demo import DEFAULT_BASE_URL, brand_base_urls, seed_demo


class Command(BaseCommand):
    help = "Create (idempotently) the demo world: brands, car parks LHR-T5 and MAN-T2, agents, staff user demo."

    def add_arguments(self, parser):
        parser.add_argument(
            "--base-url",
            default=os.environ.get("DEMO_BASE_URL", DEFAULT_BASE_URL),
            help="Where the demo server answers, for the links in emails (default: $DEMO_BASE_URL, else "
            f"{DEFAULT_BASE_URL}); Skyline Parking gets the same scheme and port on skyline.parkgate.test",
        )
        parser.add_argument(
            "--history",
            type=int,
            default=0,
            metavar="DAYS",
            help="Also add DAYS of booking, visit, read and ledger history (and the next 30 days' bookings) to every "
            "car park, for the reports and the forecast; idempotent for the same DAYS (apps/insight/history.py)",
        )

    def handle(self, *args, base_url: str, history: int = 0, **options):
        try:
            URLValidator(schemes=["http", "https"])(base_url)
        except ValidationError:
            raise CommandError(f"--base-url must be an http(s) URL, not {base_url!r}", returncode=2) from None
        if history < 0:
            raise CommandError("--history must be a number of days (0 or more)", returncode=2)
        seed_demo(base_url=base_url)
        if history:
            counts = history_seed(days=history)
            added = ", ".join(f"{n} {what}" for what, n in counts.items()) or "nothing (already seeded)"
            self.stdout.write(f"History of {history} days: added {added}.")
        site, skyline = brand_base_urls(base_url).values()
        self.stdout.write(
            "Demo world ready.\n"
            f"  Staff dashboard: {site}/dashboard/  (user demo, password demo; also the admin at {site}/admin/)\n"
            f"  Customer site:   {site}/  (Parkgate Demo); {skyline}/ is Skyline Parking\n"
            "  Agent mailboxes: skypark@ / holidayx@ / legacy80@bookings.parkgate.test on SMTP port 2525\n"
            "  A lane controller (in a second terminal; DEBUG=1 as the demo runs with it):\n"
            "    DEBUG=1 .venv/bin/python manage.py enrol_device --carpark LHR-T5 --lane N-IN --lane N-OUT"
        )
