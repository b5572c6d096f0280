"""`manage.py create_feed_token --name NAME`: prints a new flight-status feed token, alone on the last line."""

from django.core.management.base import BaseCommand, CommandError

from apps.ground import feed


class Command(BaseCommand):
    help = "Create a token for the flight-status feed. The token is shown once, alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="who feeds with it, e.g. 'flightaware webhook'")

    def handle(self, *args, **options):
        try:
            token = feed.feed_token_create(name=options["name"])
        except ValueError as exc:
            raise CommandError(str(exc), returncode=1) from None
        self.stdout.write("Flight-status feed token (shown once; send as 'Authorization: Bearer ...'):")
        self.stdout.write(token)
