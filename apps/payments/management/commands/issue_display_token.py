"""Issue a token for a lane's display screen (the overstay QR code): printed once, alone on the last line."""

from django.core.management.base import BaseCommand

from apps.payments.overstay import lane_display_issue


class Command(BaseCommand):
    help = "Issue a display token for a lane's screen; open /lanes/<lane id>/display?token=<token> on it."

    def add_arguments(self, parser):
        parser.add_argument("--carpark", required=True)
        parser.add_argument("--lane", required=True)

    def handle(self, *args, carpark, lane, **options):
        found, token = lane_display_issue(carpark_code=carpark, lane_code=lane)
        self.stdout.write(f"Open /lanes/{found.pk}/display?token=<the token below> on the screen at {carpark} {lane}.")
        self.stdout.write(token)
