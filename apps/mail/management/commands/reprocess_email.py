"""`manage.py reprocess_email ID [ID ...]`: run failed booking emails again after fixing data."""

from django.core.management.base import BaseCommand

from apps.mail import services
from apps.mail.models import InboundEmail


class Command(BaseCommand):
    help = "Reprocess stored booking emails (failed ones, or the failed rows of processed ones)."

    def add_arguments(self, parser):
        parser.add_argument("ids", nargs="+", type=int, metavar="ID")

    def handle(self, *args, **options):
        missing = False
        for message_id in options["ids"]:
            if not InboundEmail.objects.filter(pk=message_id).exists():
                self.stderr.write(f"#{message_id}: no such message")
                missing = True
                continue
            status = services.inbound_email_reprocess(message_id=message_id)
            if status is None:
                current = InboundEmail.objects.values_list("status", flat=True).get(pk=message_id)
                self.stdout.write(f"#{message_id}: not reprocessed (status {current})")
            else:
                self.stdout.write(f"#{message_id}: {status}")
        if missing:
            raise SystemExit(1)
