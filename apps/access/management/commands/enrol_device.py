from django.core.management.base import BaseCommand, CommandError

from apps.access import services
from apps.carparks.models import CarPark, Lane


class Command(BaseCommand):
    help = "Create a lane controller for lanes of a car park and print its one-time enrolment code (valid 24 h)."

    def add_arguments(self, parser):
        parser.add_argument("--carpark", required=True, help="car park code, e.g. LHR-T5")
        parser.add_argument("--lane", required=True, action="append", help="lane code (repeat for several lanes)")
        parser.add_argument("--name", default="", help="a name for staff")

    def handle(self, *args, carpark, lane, name, **options):
        try:
            device, issued = services.device_create(carpark_code=carpark, lane_codes=lane, name=name)
        except (CarPark.DoesNotExist, Lane.DoesNotExist) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Device {device.id} created for {carpark} lanes {', '.join(lane)}.")
        self.stdout.write("Enrol it within 24 h: POST /api/device/v1/enrol with this code. The code is shown once:")
        self.stdout.write(issued.code)
