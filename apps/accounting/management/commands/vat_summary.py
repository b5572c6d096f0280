from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.accounting import vat
from apps.accounting.management.commands._args import date_arg, quarter_arg


class Command(BaseCommand):
    help = (
        "The VAT return's figures for a quarter (or --start/--end): output VAT on sales, cancellation fees and "
        "overstays, input VAT on agents' commission, and the net due, per currency (from the ledger)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--quarter", type=quarter_arg, help="YYYY-Qn (calendar quarters); default: this one")
        parser.add_argument("--start", type=date_arg, help="YYYY-MM-DD: first day of another VAT period")
        parser.add_argument("--end", type=date_arg, help="YYYY-MM-DD: its last day")

    def handle(self, *args, quarter=None, start=None, end=None, **options):
        if (start is None) != (end is None) or (quarter and start):
            raise CommandError("give --quarter, or both --start and --end")
        if start is None:
            start, end = quarter or vat.quarter_parse(vat.quarter_of(timezone.localdate()))
        summary = vat.vat_summary(start=start, end=end)
        self.stdout.write(f"VAT summary {start.isoformat()} to {end.isoformat()} (postings dated in the period)")
        if not summary["currencies"]:
            self.stdout.write("(no postings)")
        for cur in summary["currencies"]:
            c = cur["currency"]
            self.stdout.write(f"{c}: output VAT {cur['output_vat']} on net sales {cur['net_sales']}")
            for r in cur["rates"]:
                at = f"{r['percent']}%" if r["percent"] is not None else "no rate (posted before VAT)"
                self.stdout.write(f"{c}:   at {at}: output VAT {r['output_vat']} on net {r['net_sales']}")
            self.stdout.write(f"{c}: input VAT on commissions {cur['input_vat']} on net {cur['net_commission']}")
            self.stdout.write(f"{c}: net VAT due {cur['net_due']}")
