"""Agents' invoices: lines per booking, totals equal to their lines, credit notes after invoicing, gapless numbers,
idempotent runs (the job and the command), payment; and the overstay charge."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from apps.accounting import chart, jobs, selectors, services
from apps.accounting import invoices as invoicing
from apps.accounting.models import Invoice, InvoiceLine, LedgerLine
from tests.accounting.factories import amend_booking, cancel_booking, make_booking

pytestmark = pytest.mark.django_db

D = Decimal


def this_month() -> date:
    return timezone.localdate().replace(day=1)


def agent_account(code: str, agent) -> Decimal:
    return sum((line.amount for line in LedgerLine.objects.filter(account__code=code, agent=agent)), D("0"))


def assert_totals_match_lines(invoice: Invoice) -> None:
    lines = list(invoice.lines.all())
    assert invoice.line_count == len(lines)
    assert invoice.gross_total == sum((line.price for line in lines), D("0"))
    assert invoice.commission_total == sum((line.commission for line in lines), D("0"))
    assert (
        invoice.total == sum((line.amount for line in lines), D("0")) == invoice.gross_total - invoice.commission_total
    )


def test_monthly_invoice_has_a_line_per_booking_and_moves_receivables_to_the_agent(carpark, agent):
    a = make_booking(carpark=carpark, agent=agent, price="100.00")
    b = make_booking(carpark=carpark, agent=agent, price="54.99", commission="8.25")
    make_booking(carpark=carpark, price="70.00")  # a customer's own booking: not the agent's
    [invoice] = invoicing.agent_invoices_generate(agent_id=agent.pk, month=this_month())
    assert invoice.kind == "invoice" and invoice.number == f"INV-{invoice.issued_on.year}-000001"
    assert sorted(invoice.lines.values_list("reference", "price", "commission", "amount")) == [
        (a.reference, D("100.00"), D("15.00"), D("85.00")),
        (b.reference, D("54.99"), D("8.25"), D("46.74")),
    ]
    assert_totals_match_lines(invoice)
    assert invoice.total == D("131.74")
    assert selectors.booking_balance(a.pk) == 0 and selectors.booking_balance(b.pk) == 0
    assert agent_account(chart.AGENT_RECEIVABLES, agent) == D("131.74")
    assert agent_account(chart.COMMISSION_PAYABLE, agent) == 0  # netted off on the invoice
    assert selectors.trial_balance().balanced
    # Running again (the job retried, or the command by hand) issues nothing.
    assert invoicing.agent_invoices_generate(agent_id=agent.pk, month=this_month()) == []


def test_cancellation_after_invoicing_gives_a_credit_note_and_amendment_a_new_line(carpark, agent):
    a = make_booking(carpark=carpark, agent=agent, price="100.00")
    b = make_booking(carpark=carpark, agent=agent, price="40.00")
    [first] = invoicing.agent_invoices_generate(agent_id=agent.pk, month=this_month())
    cancel_booking(a)
    amend_booking(b, price="50.00")
    docs = invoicing.agent_invoices_generate(agent_id=agent.pk, month=this_month())
    by_kind = {doc.kind: doc for doc in docs}
    credit, extra = by_kind["credit_note"], by_kind["invoice"]
    assert credit.number.startswith("CN-") and credit.total == D("-85.00")
    assert list(credit.lines.values_list("reference", "price", "commission")) == [
        (a.reference, D("-100.00"), D("-15.00"))
    ]
    assert list(extra.lines.values_list("reference", "price", "commission")) == [(b.reference, D("10.00"), D("1.50"))]
    assert extra.sequence == first.sequence + 1  # gapless in the invoice series
    for doc in (first, credit, extra):
        assert_totals_match_lines(doc)
    assert selectors.booking_balance(a.pk) == 0 and selectors.booking_balance(b.pk) == 0
    assert agent_account(chart.AGENT_RECEIVABLES, agent) == first.total + credit.total + extra.total == D("42.50")
    assert selectors.trial_balance().balanced


def test_invoice_covers_only_postings_up_to_the_month_end(carpark, agent):
    make_booking(carpark=carpark, agent=agent, price="100.00")
    last_month = (this_month() - timedelta(days=1)).replace(day=1)
    assert invoicing.agent_invoices_generate(agent_id=agent.pk, month=last_month) == []
    assert len(invoicing.agent_invoices_generate(agent_id=agent.pk, month=this_month())) == 1


def test_invoice_paid_settles_the_agent(carpark, agent):
    make_booking(carpark=carpark, agent=agent, price="100.00")
    [invoice] = invoicing.agent_invoices_generate(agent_id=agent.pk, month=this_month())
    invoicing.invoice_mark_paid(invoice_id=invoice.pk)
    invoicing.invoice_mark_paid(invoice_id=invoice.pk)  # twice: paid once
    assert agent_account(chart.AGENT_RECEIVABLES, agent) == 0
    assert sum(line.amount for line in LedgerLine.objects.filter(account__code=chart.BANK)) == D("85.00")
    statement = selectors.agent_statement(agent_id=agent.pk, start=this_month(), end=timezone.localdate())
    assert statement["invoices"][0]["status"] == "paid"
    assert statement["receivable"]["GBP"]["closing"] == 0
    assert statement["receivable"]["GBP"]["commission_not_invoiced"] == 0


def test_invoice_numbers_are_gapless_per_year_across_agents(carpark, agent):
    from apps.agents.models import Agent

    other = Agent.objects.create(code="other", name="Other", commission_rate=D("0.10"))
    issued_on = timezone.localdate()
    for _ in range(3):
        make_booking(carpark=carpark, agent=agent)
        make_booking(carpark=carpark, agent=other)
        invoicing.agent_invoices_generate(agent_id=agent.pk, month=this_month(), issued_on=issued_on)
        invoicing.agent_invoices_generate(agent_id=other.pk, month=this_month(), issued_on=issued_on)
    numbers = list(Invoice.objects.filter(series="INV").order_by("sequence").values_list("sequence", flat=True))
    assert numbers == list(range(1, 7))
    next_year = issued_on.replace(year=issued_on.year + 1, month=1, day=1)
    make_booking(carpark=carpark, agent=agent)
    [invoice] = invoicing.agent_invoices_generate(agent_id=agent.pk, month=this_month(), issued_on=next_year)
    assert invoice.number == f"INV-{next_year.year}-000001"


def test_the_periodic_job_invoices_every_agent_for_last_month(carpark, agent, monkeypatch):
    make_booking(carpark=carpark, agent=agent, price="20.00")
    # Pretend today is the 1st of next month: the job invoices "last month" = this month.
    month = this_month()
    next_month = (month + timedelta(days=32)).replace(day=1)
    monkeypatch.setattr(timezone, "localdate", lambda *a, **k: next_month)
    enqueued = []
    monkeypatch.setattr(jobs, "enqueue", lambda name, job_id=None, **kw: enqueued.append((name, kw)))
    jobs.monthly_invoices()
    assert enqueued == [("accounting.invoice_agent", {"agent_id": agent.pk, "month": month.isoformat()})]
    for _, kwargs in enqueued * 2:  # arq may run a job twice
        jobs.invoice_agent(**kwargs)
    [invoice] = Invoice.objects.all()
    assert invoice.period == month and invoice.issued_on == next_month and invoice.total == D("17.00")


def test_agent_invoices_command(carpark, agent, capsys):
    make_booking(carpark=carpark, agent=agent, price="20.00")
    call_command("agent_invoices", "--month", f"{this_month():%Y-%m}", "--agent", agent.code)
    out = capsys.readouterr().out
    assert "INV-" in out and "1 document(s) issued" in out
    assert InvoiceLine.objects.count() == 1


# --- Overstay ---------------------------------------------------------------------------------------------------

DEPARTURE = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("exit_after_departure", "unit", "units", "amount"),
    [
        (timedelta(minutes=60), "hour", 0, "0.00"),  # within grace
        (timedelta(minutes=60, seconds=1), "hour", 1, "12.50"),  # a started hour
        (timedelta(minutes=120), "hour", 1, "12.50"),  # exactly one hour after grace
        (timedelta(minutes=121), "hour", 2, "25.00"),
        (timedelta(hours=26), "day", 2, "25.00"),  # 25 h after grace: 2 started days
        (timedelta(hours=25), "day", 1, "12.50"),
    ],
)
def test_overstay_charge_per_started_unit_after_grace(exit_after_departure, unit, units, amount):
    quote = services.overstay_charge_compute(
        departure=DEPARTURE, exited_at=DEPARTURE + exit_after_departure, grace_min=60, rate=D("12.50"), unit=unit
    )
    assert (quote.units, quote.amount) == (units, D(amount))


def test_overstay_charge_posts_once_per_visit(carpark):
    booking = make_booking(carpark=carpark, price="30.00", days_ahead=-10, length_days=2)
    exited = booking.departure + timedelta(hours=3, minutes=30)  # 2.5 h after the 60 min grace: 3 started hours
    charge = services.overstay_charge_post(booking_id=booking.pk, exited_at=exited, visit_id=991)
    again = services.overstay_charge_post(booking_id=booking.pk, exited_at=exited, visit_id=991)
    assert charge.pk == again.pk and charge.units == 3 and charge.amount == D("37.50")
    assert selectors.booking_balance(booking.pk) == D("67.50")
    assert sum(line.amount for line in LedgerLine.objects.filter(account__code=chart.OVERSTAY_REVENUE)) == D("-31.25")
    overstay_vat = LedgerLine.objects.filter(account__code=chart.OUTPUT_VAT, transaction__kind="overstay")
    assert [(line.amount, line.vat_rate) for line in overstay_vat] == [(D("-6.25"), D("0.2000"))]
    on_time = services.overstay_charge_post(booking_id=booking.pk, exited_at=booking.departure, visit_id=992)
    assert on_time is None


def test_booking_moved_to_another_currency_is_reversed_and_reinvoiced(carpark, euro_carpark, agent):
    from django.db import transaction

    from apps.bookings import signals
    from apps.bookings.models import Booking

    booking = make_booking(carpark=carpark, agent=agent, price="100.00")
    [gbp] = invoicing.agent_invoices_generate(agent_id=agent.pk, month=this_month())
    with transaction.atomic():  # moved to the Paris car park, re-priced in euros (as booking_amend would)
        Booking.objects.filter(pk=booking.pk).update(carpark=euro_carpark, currency="EUR", price=D("90.00"))
        booking.refresh_from_db()
        signals.booking_amended.send(
            sender=Booking, booking=booking, previous_price=D("100.00"), previous_commission=None
        )
    tb = selectors.trial_balance()
    assert tb.balanced
    revenue = {(r.currency, r.code): r.balance for r in tb.rows}
    assert revenue[("GBP", chart.PARKING_REVENUE)] == 0 and revenue[("EUR", chart.PARKING_REVENUE)] == D("-75.00")
    assert revenue[("GBP", chart.OUTPUT_VAT)] == 0 and revenue[("EUR", chart.OUTPUT_VAT)] == D("-15.00")
    docs = {(d.currency, d.kind): d for d in invoicing.agent_invoices_generate(agent_id=agent.pk, month=this_month())}
    assert docs[("GBP", "credit_note")].total == -gbp.total == D("-85.00")
    assert docs[("EUR", "invoice")].total == D("76.50")  # 90.00 less 15%
    assert selectors.trial_balance().balanced


@pytest.mark.django_db(transaction=True)
def test_concurrent_invoice_runs_keep_numbers_gapless_and_issue_once(carpark):
    """Several agents invoiced at once, each twice (the job retried on another worker): one invoice per agent,
    numbers 1..n with no gap or duplicate (the counter row is locked until each run commits)."""
    import threading

    from django.db import connection

    from apps.agents.models import Agent

    agents = [Agent.objects.create(code=f"con{n}", name=f"Concurrent {n}", commission_rate=D("0.10")) for n in range(4)]
    for agent in agents:
        make_booking(carpark=carpark, agent=agent, price="10.00")
    errors = []

    def run(agent_id: int) -> None:
        try:
            invoicing.agent_invoices_generate(agent_id=agent_id, month=this_month())
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(a.pk,)) for a in agents * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sorted(Invoice.objects.values_list("sequence", flat=True)) == [1, 2, 3, 4]
    assert sorted(Invoice.objects.values_list("agent__code", flat=True)) == [a.code for a in agents]
