from django.core.management.base import BaseCommand, CommandError

from apps.accounting import invoices, selectors, services
from apps.accounting.management.commands._args import date_arg, month_arg
from apps.accounting.models import Invoice
from apps.agents.models import Agent


class Command(BaseCommand):
    help = (
        "Issue agents' invoices (and credit notes) for a month, on demand: what the ledger holds up to the end of "
        "--month and was not invoiced yet. Safe to run again (nothing is invoiced twice)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--month", type=month_arg, required=True, help="YYYY-MM")
        parser.add_argument("--agent", action="append", help="agent code (repeat; default: every agent)")
        parser.add_argument("--issued-on", type=date_arg, help="YYYY-MM-DD (default: today)")

    def handle(self, *args, month, agent=None, issued_on=None, **options):
        if agent:
            found = dict(Agent.objects.filter(code__in=agent).values_list("code", "pk"))
            missing = sorted(set(agent) - set(found))
            if missing:
                raise CommandError(f"unknown agent(s): {', '.join(missing)}")
            agent_ids = [found[code] for code in agent]
        else:
            agent_ids = selectors.agent_ids_to_invoice()
        issued: list[Invoice] = []
        for agent_id in agent_ids:
            try:
                issued += invoices.agent_invoices_generate(agent_id=agent_id, month=month, issued_on=issued_on)
            except services.PostingError as exc:
                raise CommandError(str(exc)) from None
        for invoice in issued:
            self.stdout.write(
                f"{invoice.number} {invoice.get_kind_display()} {invoice.agent.code} {invoice.period:%Y-%m}: "
                f"{invoice.line_count} line(s), total {invoice.total} {invoice.currency}"
            )
        self.stdout.write(f"{len(issued)} document(s) issued for {month:%Y-%m}.")
