from django.core.management.base import BaseCommand

from project.demo import seed_demo


class Command(BaseCommand):
    help = "Create (idempotently) the demo world: brands, car parks LHR-T5 and MAN-T2, agents, staff user demo."

    def handle(self, *args, **options):
        seed_demo()
        self.stdout.write(
            "Demo world ready.\n"
            "  Staff dashboard: http://localhost:8000/dashboard/  (user demo, password demo)\n"
            "  Customer site:   http://localhost:8000/  (Parkgate Demo); skyline.parkgate.test is Skyline Parking\n"
            "  Agent mailboxes: skypark@ / holidayx@ / legacy80@bookings.parkgate.test on SMTP port 2525\n"
            "  A lane controller (in a second terminal; DEBUG=1 as the demo runs with it):\n"
            "    DEBUG=1 .venv/bin/python manage.py enrol_device --carpark LHR-T5 --lane N-IN --lane N-OUT"
        )
