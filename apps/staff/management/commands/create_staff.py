import getpass
import os

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.staff import services
from apps.staff.models import StaffAssignment


class Command(BaseCommand):
    help = (
        "Create (or update) a staff member with a role at one or more car parks. "
        "The password comes from PARKGATE_PASSWORD, or is asked for."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", required=True)
        parser.add_argument("--carpark", required=True, action="append", help="car park code (repeat for several)")
        parser.add_argument("--role", required=True, choices=StaffAssignment.Role.values)

    def handle(self, *args, username, carpark, role, **options):
        password = os.environ.get("PARKGATE_PASSWORD") or self.ask_password()
        try:
            services.staff_member_set(username=username, password=password, carpark_codes=carpark, role=role)
        except services.UnknownCarPark as exc:
            raise CommandError(f"unknown car park: {exc}") from None
        except services.DemoUserRefused:
            raise CommandError(f"'{username}' is the demo world's user: only seed_demo creates it") from None
        except ValidationError as exc:
            raise CommandError("password refused: " + " ".join(exc.messages)) from None
        self.stdout.write(f"{username} is {role} at {', '.join(carpark)}.")

    def ask_password(self) -> str:
        first = getpass.getpass("Password: ")
        if not first or first != getpass.getpass("Password (again): "):
            raise CommandError("the passwords are empty or do not match")
        return first
