"""`manage.py create_api_token --agent CODE [--name NAME]`: prints a new API token, alone on the last line."""

from django.core.management.base import BaseCommand, CommandError

from apps.agents import services


class Command(BaseCommand):
    help = "Create an API token for an agent. The token is shown once, alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("--agent", required=True, help="the agent's code, e.g. skypark")
        parser.add_argument("--name", default="", help="what the token is for, e.g. 'booking engine'")

    def handle(self, *args, **options):
        try:
            token = services.api_token_create(agent_code=options["agent"], name=options["name"])
        except services.UnknownAgent as exc:
            raise CommandError(str(exc), returncode=1) from None
        self.stdout.write(f"API token for agent {options['agent']} (shown once; send as 'Authorization: Bearer ...'):")
        self.stdout.write(token)
