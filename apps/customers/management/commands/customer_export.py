import json

from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder

from apps.customers.export import customer_export
from apps.customers.subjects import Nobody


class Command(BaseCommand):
    help = "Write everything held about one person (subject access request) to standard output as one JSON document."

    def add_arguments(self, parser):
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--email")
        who.add_argument("--plate")
        who.add_argument("--name")

    def handle(self, *args, email=None, plate=None, name=None, **options):
        try:
            document = customer_export(
                email=email or "", plate=plate or "", name=name or "", actor_label="manage.py customer_export"
            )
        except Nobody:
            raise CommandError("nobody matches: no booking, plate read or visit is held under that") from None
        self.stdout.write(json.dumps(document, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False))
