from django.core.management.base import BaseCommand, CommandError

from apps.accounting import selectors
from apps.accounting.invoices import month_end
from apps.accounting.management.commands._args import month_arg


class Command(BaseCommand):
    help = (
        "Print each ledger account's debits, credits and balance (all time, or as at the end of --month), "
        "per currency. Exits 1 if the ledger does not balance."
    )

    def add_arguments(self, parser):
        parser.add_argument("--month", type=month_arg, help="YYYY-MM: the trial balance as at the end of that month")

    def handle(self, *args, month=None, **options):
        until = month_end(month) if month else None
        tb = selectors.trial_balance(until=until)
        self.stdout.write(f"Trial balance {'as at ' + until.isoformat() if until else '(all postings)'}")
        header = f"{'account':<32} {'cur':<4} {'debits':>16} {'credits':>16} {'balance':>16}"
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        for row in tb.rows:
            name = f"{row.code} {row.name}"
            self.stdout.write(f"{name:<32} {row.currency:<4} {row.debits:>16} {row.credits:>16} {row.balance:>16}")
        for currency, (debits, credits) in sorted(tb.totals().items()):
            self.stdout.write(f"{'TOTAL':<32} {currency:<4} {debits:>16} {credits:>16} {debits - credits:>16}")
        if not tb.rows:
            self.stdout.write("(no postings)")
        if not tb.balanced:
            raise CommandError("The ledger does NOT balance: debits and credits differ (see the totals above).")
        self.stdout.write("Balanced.")
