"""`manage.py set_agent_smtp_password --agent CODE`: require SMTP AUTH for an agent's booking mail."""

import getpass
import os

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.agents import services


class Command(BaseCommand):
    help = (
        "Set an agent's SMTP AUTH password; from then on only clients logged in with it may send the agent's "
        "booking mail. The password comes from PARKGATE_PASSWORD, or is asked for."
    )

    def add_arguments(self, parser):
        parser.add_argument("--agent", required=True, help="the agent's code, e.g. skypark")

    def handle(self, *args, agent, **options):
        password = os.environ.get("PARKGATE_PASSWORD") or self.ask_password()
        try:
            login = services.agent_smtp_password_set(agent_code=agent, password=password)
        except services.UnknownAgent as exc:
            raise CommandError(str(exc), returncode=1) from None
        except ValidationError as exc:
            raise CommandError("password refused: " + " ".join(exc.messages), returncode=1) from None
        self.stdout.write(f"Agent {agent} now sends booking mail only with SMTP AUTH as user {login!r}.")
        if not (settings.SMTP_TLS_CERT and settings.SMTP_TLS_KEY):
            self.stderr.write(
                "Warning: SMTP_TLS_CERT and SMTP_TLS_KEY are not set; AUTH is only offered after STARTTLS, "
                "so this agent's mail is refused until they are."
            )

    def ask_password(self) -> str:
        first = getpass.getpass("SMTP password: ")
        if not first or first != getpass.getpass("SMTP password (again): "):
            raise CommandError("the passwords are empty or do not match")
        return first
