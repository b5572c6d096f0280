from django.core.management.base import BaseCommand, CommandError

from apps.customers.erasure import ErasureRefused, customer_erase
from apps.customers.subjects import Nobody


class Command(BaseCommand):
    help = (
        "Erase one person's personal data (name, email, phone, plates) from bookings, reads, visits and emails, "
        "keeping amounts, dates and the ledger. Prints the rows changed per table. Exit 1: nobody matches, or refused."
    )

    def add_arguments(self, parser):
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--email")
        who.add_argument("--plate")
        parser.add_argument("--reason", required=True, help="why (recorded; do not name the person)")
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    def handle(self, *args, email=None, plate=None, reason, yes=False, **options):
        if not reason.strip():
            raise CommandError("say why (--reason)")
        if not yes and input("Erase this person's personal data for good? [y/N] ").strip().lower() not in ("y", "yes"):
            raise CommandError("not erased")
        try:
            erasure = customer_erase(
                email=email or "", plate=plate or "", reason=reason, actor_label="manage.py customer_erase"
            )
        except Nobody:
            raise CommandError("nobody matches: nothing erased") from None
        except ErasureRefused as exc:
            raise CommandError(f"erasure refused: {exc}") from None
        for table, count in sorted(erasure.counts.items()):
            self.stdout.write(f"{table}: {count}")
        self.stdout.write(f"erasure {erasure.pk} recorded")
