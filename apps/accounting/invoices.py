"""Agents' monthly invoices and credit notes: what was posted and not yet invoiced, snapshotted into numbered
documents with their ledger lines, and marked paid. Idempotent: a run issues only what no earlier run did."""

import calendar
import contextlib
from collections.abc import Callable
from datetime import date
from decimal import Decimal

from django.db import DatabaseError, connection, transaction
from django.db.models import DecimalField, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.accounting import chart
from apps.accounting.ledger import (
    CENT,
    Line,
    StreamedPosting,
    account_ids,
    month_start,
    transaction_post,
)
from apps.accounting.models import (
    Invoice,
    InvoiceCounter,
    InvoiceLine,
    LedgerLine,
    LedgerTransaction,
)
from apps.accounting.services import MONEY, ZERO, InvoiceInvalid
from apps.agents.models import Agent
from apps.bookings.models import Booking
from apps.core.services import audit_log_record

# --- Agents' invoices -------------------------------------------------------------------------------------------

RATE = DecimalField(max_digits=5, decimal_places=4)
INVOICE_SERIES = {Invoice.Kind.INVOICE: "INV", Invoice.Kind.CREDIT_NOTE: "CN"}


def month_end(month: date) -> date:
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


def invoice_number_next(*, series: str, year: int) -> tuple[int, str]:
    """The next number of a series in a year, without gaps: the counter row is locked until our commit."""
    InvoiceCounter.objects.bulk_create([InvoiceCounter(series=series, year=year)], ignore_conflicts=True)
    counter = InvoiceCounter.objects.select_for_update().get(series=series, year=year)
    counter.last += 1
    counter.save(update_fields=["last"])
    return counter.last, f"{series}-{year}-{counter.last:06d}"


_ROW_FIELDS = (
    "pk",
    "reference",
    "agent_ref",
    "arrival",
    "departure",
    "status",
    "carpark__code",
    "d_price",
    "d_commission",
    "d_price_vat",
    "d_commission_vat",
    "vat_rate",
)
_MONEY_FIELDS = ("d_price", "d_commission", "d_price_vat", "d_commission_vat")


def _uninvoiced_queryset(*, agent_id: int, currency: str, until: date):
    """Per booking of the agent: what the ledger (up to `until`) says minus what was already invoiced.

    The price is the sale's gross (net on 4000 + VAT on 2200; overstays are the customer's, not the agent's), the
    commission the gross owed to the agent (2100), each with its VAT; the rate is the sale's latest. Only bookings
    with something to invoice or credit come out.
    """
    ids = account_ids()
    ledger = LedgerLine.objects.filter(
        booking_id=OuterRef("pk"), transaction__currency=currency, transaction__date__lte=until
    ).exclude(transaction__kind=LedgerTransaction.Kind.OVERSTAY)

    def ledger_sum(*codes: str):
        rows = (
            ledger.filter(account_id__in=[ids[c] for c in codes])
            .values("booking_id")
            .annotate(s=Sum("amount"))
            .values("s")
        )
        return Coalesce(Subquery(rows, output_field=MONEY), Value(ZERO), output_field=MONEY)

    invoiced = InvoiceLine.objects.filter(booking_id=OuterRef("pk"), invoice__currency=currency).values("booking_id")

    def invoiced_sum(field: str):
        rows = invoiced.annotate(s=Sum(field)).values("s")
        return Coalesce(Subquery(rows, output_field=MONEY), Value(ZERO), output_field=MONEY)

    rate = ledger.filter(account_id=ids[chart.OUTPUT_VAT], vat_rate__isnull=False).order_by("-pk").values("vat_rate")
    return (
        Booking.objects.filter(agent_id=agent_id)
        .annotate(
            d_price=-ledger_sum(chart.PARKING_REVENUE, chart.OUTPUT_VAT) - invoiced_sum("price"),
            d_commission=-ledger_sum(chart.COMMISSION_PAYABLE) - invoiced_sum("commission"),
            d_price_vat=-ledger_sum(chart.OUTPUT_VAT) - invoiced_sum("price_vat"),
            d_commission_vat=ledger_sum(chart.INPUT_VAT) - invoiced_sum("commission_vat"),
            vat_rate=Coalesce(Subquery(rate[:1], output_field=RATE), Value(ZERO), output_field=RATE),
        )
        .exclude(d_price=0, d_commission=0)
        .order_by("pk")
        .values(*_ROW_FIELDS)
    )


def _snapshot_rows(queryset, *, chunk_size: int):
    """Stream a query's rows after materialising them in a temporary table.

    The invoice run inserts into the very tables its query reads (invoice and ledger lines). A cursor evaluated
    lazily alongside those inserts re-reads them per booking, and with statistics saying those tables are small
    the planner picks scans that grow with every batch written: quadratic (minutes for 50,000 bookings).
    Snapshotting the result in the database first keeps the stream flat in memory and linear in time.
    """
    sql, params = queryset.query.sql_with_params()
    table = "accounting_invoice_run"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {table}")
        cursor.execute(f"CREATE TEMPORARY TABLE {table} AS {sql}", params)
    try:
        with connection.chunked_cursor() as cursor:  # a server-side cursor on PostgreSQL
            cursor.execute(f"SELECT * FROM {table} ORDER BY 1")  # noqa: S608
            while rows := cursor.fetchmany(chunk_size):
                for row in rows:
                    item = dict(zip(_ROW_FIELDS, row, strict=True))
                    for name in _MONEY_FIELDS:
                        item[name] = Decimal(str(item[name])).quantize(CENT)
                    item["vat_rate"] = Decimal(str(item["vat_rate"]))
                    yield item
    finally:
        # After a database error the transaction is aborted and its rollback drops the table anyway: do not let
        # this clean-up hide the original error.
        with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")


def _day(value) -> str:
    """YYYY-MM-DD of a datetime."""
    return value.strftime("%Y-%m-%d")


class _DocumentBuilder:
    """One invoice or credit note being written: header on first line, lines and ledger lines in batches."""

    def __init__(self, *, agent: Agent, currency: str, period: date, issued_on: date, kind: str, batch_size: int):
        self.agent, self.currency, self.period, self.issued_on, self.kind = agent, currency, period, issued_on, kind
        self.batch_size = batch_size
        self.invoice: Invoice | None = None
        self.posting: StreamedPosting | None = None
        self.lines: list[InvoiceLine] = []
        self.gross = self.commission = self.price_vat = self.commission_vat = ZERO
        self.count = 0

    def _start(self) -> None:
        series = INVOICE_SERIES[self.kind]
        seq, number = invoice_number_next(series=series, year=self.issued_on.year)
        ledger_kind = LedgerTransaction.Kind.INVOICE if self.kind == Invoice.Kind.INVOICE else "credit_note"
        self.posting = StreamedPosting(
            day=self.issued_on, kind=ledger_kind, currency=self.currency, memo=f"{number} {self.agent.code}"
        )
        txn = self.posting.open()
        self.invoice = Invoice.objects.create(
            number=number,
            series=series,
            year=self.issued_on.year,
            sequence=seq,
            kind=self.kind,
            agent=self.agent,
            currency=self.currency,
            period=self.period,
            issued_on=self.issued_on,
            transaction=txn,
        )

    def add(self, row: dict) -> None:
        if self.invoice is None:
            self._start()
        price, commission = row["d_price"], row["d_commission"]
        self.gross += price
        self.commission += commission
        self.price_vat += row["d_price_vat"]
        self.commission_vat += row["d_commission_vat"]
        self.count += 1
        what = "Cancelled" if row["status"] == Booking.Status.CANCELLED else "Parking"
        self.lines.append(
            InvoiceLine(
                invoice=self.invoice,
                booking_id=row["pk"],
                reference=row["reference"],
                agent_ref=row["agent_ref"] or "",
                description=f"{what} {row['carpark__code']} {_day(row['arrival'])} to {_day(row['departure'])}",
                price=price,
                commission=commission,
                amount=price - commission,
                vat_rate=row["vat_rate"],
                price_vat=row["d_price_vat"],
                commission_vat=row["d_commission_vat"],
            )
        )
        self.posting.add(Line(chart.BOOKING_RECEIVABLES, -price, booking_id=row["pk"]))
        if len(self.lines) >= self.batch_size:
            self._flush()

    def _flush(self) -> None:
        InvoiceLine.objects.bulk_create(self.lines)
        self.lines = []

    def finish(self) -> Invoice | None:
        if self.invoice is None:
            return None
        self._flush()
        self.posting.add(Line(chart.AGENT_RECEIVABLES, self.gross - self.commission, agent_id=self.agent.pk))
        self.posting.add(Line(chart.COMMISSION_PAYABLE, self.commission, agent_id=self.agent.pk))
        self.posting.close()
        self.invoice.gross_total, self.invoice.commission_total = self.gross, self.commission
        self.invoice.total, self.invoice.line_count = self.gross - self.commission, self.count
        self.invoice.price_vat_total, self.invoice.commission_vat_total = self.price_vat, self.commission_vat
        self.invoice.save(
            update_fields=[
                "gross_total",
                "commission_total",
                "total",
                "line_count",
                "price_vat_total",
                "commission_vat_total",
            ]
        )
        return self.invoice


def agent_invoices_generate(
    *,
    agent_id: int,
    month: date,
    issued_on: date | None = None,
    batch_size: int = 2000,
    progress: Callable[[int], None] | None = None,
) -> list[Invoice]:
    """Invoice an agent for everything the ledger holds up to the end of `month` that was not invoiced yet.

    One invoice per currency for bookings sold or increased, one credit note for cancellations and reductions
    after invoicing. Lines are per booking and carry the change since the booking was last invoiced, so running
    it again (arq may) finds nothing new and issues nothing. Streams bookings and writes in batches: memory stays
    flat whatever the agent's volume. The agent's row is locked so concurrent runs queue up.
    """
    month = month_start(month)
    issued_on = issued_on or timezone.localdate()
    if issued_on < month:
        raise InvoiceInvalid(f"an invoice for {month:%Y-%m} cannot be issued before that month")
    issued: list[Invoice] = []
    with transaction.atomic():
        # FOR NO KEY UPDATE: concurrent runs for this agent queue up, its new bookings (FK KEY SHARE) do not.
        agent = Agent.objects.select_for_update(no_key=True).get(pk=agent_id)
        # Bookings' currencies, and those already invoiced in (a booking moved to another currency's car park).
        currencies = set(Booking.objects.filter(agent_id=agent_id).values_list("currency", flat=True).distinct())
        currencies |= set(Invoice.objects.filter(agent_id=agent_id).values_list("currency", flat=True).distinct())
        for currency in sorted(currencies):
            docs = {
                kind: _DocumentBuilder(
                    agent=agent, currency=currency, period=month, issued_on=issued_on, kind=kind, batch_size=batch_size
                )
                for kind in (Invoice.Kind.INVOICE, Invoice.Kind.CREDIT_NOTE)
            }
            done = 0
            rows = _uninvoiced_queryset(agent_id=agent_id, currency=currency, until=month_end(month))
            for row in _snapshot_rows(rows, chunk_size=batch_size):
                net = row["d_price"] - row["d_commission"]
                docs[Invoice.Kind.INVOICE if net >= 0 else Invoice.Kind.CREDIT_NOTE].add(row)
                done += 1
                if progress and done % batch_size == 0:
                    progress(done)
            if progress and done % batch_size:
                progress(done)
            issued += [doc for doc in (d.finish() for d in docs.values()) if doc is not None]
    return issued


def invoice_mark_paid(*, invoice_id: int, paid_on: date | None = None, actor=None) -> Invoice:
    """The agent paid an invoice (or was paid a credit note) by bank transfer: settle its receivable."""
    paid_on = paid_on or timezone.localdate()
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update(of=("self",)).select_related("agent").get(pk=invoice_id)
        if invoice.status == Invoice.Status.PAID:
            return invoice
        txn = transaction_post(
            day=paid_on,
            kind=LedgerTransaction.Kind.INVOICE_PAYMENT,
            currency=invoice.currency,
            lines=[
                Line(chart.BANK, invoice.total),
                Line(chart.AGENT_RECEIVABLES, -invoice.total, agent_id=invoice.agent_id),
            ],
            memo=f"{invoice.number} paid",
            created_by=actor,
        )
        invoice.status, invoice.paid_on, invoice.payment_transaction = Invoice.Status.PAID, paid_on, txn
        invoice.save(update_fields=["status", "paid_on", "payment_transaction"])
        audit_log_record(
            action="accounting.invoice_paid",
            actor=actor,
            actor_label="" if actor else "system",
            obj=invoice,
            data={"number": invoice.number},
        )
    return invoice
