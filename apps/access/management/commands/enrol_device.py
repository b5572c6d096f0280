import argparse

from django.core.management.base import BaseCommand, CommandError

from apps.access import services
from apps.access.cameras import CAMERAS
from apps.carparks.models import CarPark, Lane


def camera_mapping(value: str) -> tuple[str, str]:
    """`--camera CAMERA_ID=LANE`: a vendor camera (Plate Recognizer camera_id, Hikvision channelID) and its lane."""
    camera, sep, lane = value.partition("=")
    if not sep or not camera.strip() or not lane.strip():
        raise argparse.ArgumentTypeError(f"expected CAMERA_ID=LANE, got {value!r}")
    return camera.strip(), lane.strip()


class Command(BaseCommand):
    help = "Create a lane controller for lanes of a car park and print its one-time enrolment code (valid 24 h)."

    def add_arguments(self, parser):
        parser.add_argument("--carpark", required=True, help="car park code, e.g. LHR-T5")
        parser.add_argument("--lane", required=True, action="append", help="lane code (repeat for several lanes)")
        parser.add_argument("--name", default="", help="a name for staff")
        parser.add_argument(
            "--camera",
            action="append",
            default=[],
            type=camera_mapping,
            metavar="CAMERA_ID=LANE",
            help="map a vendor camera (Plate Recognizer camera_id, Hikvision channelID) to one of --lane (repeat)",
        )

    def handle(self, *args, carpark, lane, name, camera, **options):
        strays = sorted({code for _, code in camera} - set(lane))
        if strays:
            raise CommandError(f"--camera maps to unknown lane(s) {', '.join(strays)}: use one of --lane")
        settings = {CAMERAS: dict(camera)} if camera else None
        try:
            device, issued = services.device_create(carpark_code=carpark, lane_codes=lane, name=name, settings=settings)
        except (CarPark.DoesNotExist, Lane.DoesNotExist) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Device {device.id} created for {carpark} lanes {', '.join(lane)}.")
        for camera_id, code in camera:
            self.stdout.write(f"Camera {camera_id} -> lane {code}.")
        self.stdout.write("Enrol it within 24 h: POST /api/device/v1/enrol with this code. The code is shown once:")
        self.stdout.write(issued.code)
