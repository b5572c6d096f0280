from django.core.management.base import BaseCommand

from apps.accounting import services
from apps.accounting.management.commands._args import month_arg


class Command(BaseCommand):
    help = "Close an accounting month (nothing can be posted into it afterwards), or --reopen it."

    def add_arguments(self, parser):
        parser.add_argument("month", type=month_arg, help="YYYY-MM")
        parser.add_argument("--reopen", action="store_true")

    def handle(self, *args, month, reopen=False, **options):
        if reopen:
            services.period_reopen(month=month)
            self.stdout.write(f"{month:%Y-%m} reopened.")
        else:
            services.period_close(month=month)
            self.stdout.write(f"{month:%Y-%m} closed: postings dated in it are refused.")
