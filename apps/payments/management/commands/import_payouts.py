"""Import the card provider's payouts and the balance transactions they settled, match them to our payments and
refunds, and post the paid ones (card clearing to the bank, fees to their expense account). Also a daily job."""

from django.core.management.base import BaseCommand

from apps.payments.payouts import payouts_import


class Command(BaseCommand):
    help = "Import Stripe payouts (card clearing against the bank, fees) for the last --days days."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=30)

    def handle(self, *args, days, **options):
        for payout in payouts_import(days=days):
            posted = "posted" if payout.ledger_transaction_id else "not posted"
            matched = "matched" if payout.matched else "UNMATCHED"
            self.stdout.write(
                f"{payout.payout_id} {payout.amount} {payout.currency} {payout.status} {matched} {posted}"
            )
