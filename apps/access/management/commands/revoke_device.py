from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.access import services
from apps.access.models import Device


class Command(BaseCommand):
    help = "Revoke a lane controller: its token stops working and its open connection is closed (4401)."

    def add_arguments(self, parser):
        parser.add_argument("device_id")

    def handle(self, *args, device_id, **options):
        try:
            device = services.device_revoke(device_id=device_id)
        except (Device.DoesNotExist, ValidationError):
            raise CommandError(f"unknown device {device_id!r}") from None
        self.stdout.write(f"Device {device.id} revoked.")
