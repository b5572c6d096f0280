"""Accounting writes: the money side of bookings, payments, overstay charges, agents' invoices, period close.

Each function owns its `transaction.atomic` (nested inside the caller's when called from a booking signal, so the
ledger commits or rolls back with the booking). Amounts are Decimal in the booking's (car park's) currency.
"""

import calendar
import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import DatabaseError, connection, transaction
from django.db.models import DecimalField, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.accounting import chart, selectors
from apps.accounting.ledger import (
    CENT,
    Line,
    PeriodClosed,
    PostingError,
    StreamedPosting,
    account_ids,
    local_date,
    month_start,
    transaction_post,
)
from apps.accounting.models import (
    AccountingPeriod,
    CarParkRates,
    Invoice,
    InvoiceCounter,
    InvoiceLine,
    LedgerLine,
    LedgerTransaction,
    OverstayCharge,
    Payment,
)
from apps.agents.models import Agent
from apps.bookings.models import Booking
from apps.core.services import audit_log_record

__all__ = ["PeriodClosed", "PostingError"]

ZERO = Decimal("0.00")
MONEY = DecimalField(max_digits=14, decimal_places=2)


class PaymentInvalid(PostingError):
    pass


class InvoiceInvalid(PostingError):
    pass


# --- Bookings ---------------------------------------------------------------------------------------------------


def booking_commission(booking: Booking) -> Decimal:
    """The agent's commission on a booking: the amount the agent stated (Booking.commission), else its rate."""
    if booking.agent_id is None:
        return ZERO
    if booking.commission is not None:
        return booking.commission
    return (booking.price * booking.agent.commission_rate).quantize(CENT, rounding=ROUND_HALF_UP)


def _posted_positions(booking_id: int) -> tuple[dict[str, Decimal], dict[tuple[str, int | None], Decimal]]:
    """What the ledger holds for a booking: sold per currency (4000), commission per currency and agent (2100)."""
    ids = account_ids()
    rows = (
        LedgerLine.objects.filter(
            booking_id=booking_id, account_id__in=[ids[chart.PARKING_REVENUE], ids[chart.COMMISSION_PAYABLE]]
        )
        .values("account_id", "transaction__currency", "agent_id")
        .annotate(s=Sum("amount"))
    )
    sold: dict[str, Decimal] = {}
    commission: dict[tuple[str, int | None], Decimal] = {}
    for r in rows:
        if r["account_id"] == ids[chart.PARKING_REVENUE]:
            sold[r["transaction__currency"]] = sold.get(r["transaction__currency"], ZERO) - r["s"]
        else:
            key = (r["transaction__currency"], r["agent_id"])
            commission[key] = commission.get(key, ZERO) - r["s"]
    return sold, commission


def booking_ledger_sync(*, booking: Booking, memo: str = "", new: bool = False) -> list[LedgerTransaction]:
    """Post whatever the ledger lacks for this booking's current price, commission and status.

    The ledger itself is the memory of what was already posted (revenue per currency, commission per currency
    and agent), so this is idempotent and does not depend on the `previous_*` values a signal carries: a repeated
    signal or a cancel of a cancelled booking posts nothing. A booking moved to a car park in another currency
    (or to another agent) has the old position reversed and the new one posted. Called by the bookings signals'
    receivers, inside the booking service's transaction.

    `new`: the booking was created in this very transaction, so nothing is posted for it yet and no other
    transaction can see its row: the row lock and the look-up of posted positions are skipped (every booking
    made pays for them otherwise).

    No savepoint of its own when nested (the signal's receivers call it inside the booking service's atomic, and
    nothing in between catches its errors): an error rolls back to the caller's savepoint, as it would to one here.
    """
    with transaction.atomic(savepoint=False):
        if new:
            sold, commission = {}, {}
        else:
            booking = (
                Booking.objects.select_for_update(of=("self",)).select_related("agent", "carpark").get(pk=booking.pk)
            )
            sold, commission = _posted_positions(booking.pk)
        cancelled = booking.status == Booking.Status.CANCELLED
        target_sold = {booking.currency: ZERO if cancelled else booking.price}
        target_commission = {(booking.currency, booking.agent_id): ZERO if cancelled else booking_commission(booking)}
        lines: dict[str, list[Line]] = {}
        for currency in target_sold.keys() | sold.keys():
            d = target_sold.get(currency, ZERO) - sold.get(currency, ZERO)
            lines.setdefault(currency, []).extend(
                [
                    Line(chart.BOOKING_RECEIVABLES, d, booking_id=booking.pk),
                    Line(chart.PARKING_REVENUE, -d, booking_id=booking.pk),
                ]
            )
        for currency, agent_id in target_commission.keys() | commission.keys():
            key = (currency, agent_id)
            d = target_commission.get(key, ZERO) - commission.get(key, ZERO)
            lines.setdefault(currency, []).extend(
                [
                    Line(chart.COMMISSION_EXPENSE, d, booking_id=booking.pk),
                    Line(chart.COMMISSION_PAYABLE, -d, booking_id=booking.pk, agent_id=agent_id),
                ]
            )
        posted = [
            transaction_post(
                day=local_date(booking.carpark.tz),
                kind=LedgerTransaction.Kind.BOOKING,
                currency=currency,
                lines=currency_lines,
                memo=memo or f"{booking.reference} {booking.status}",
                carpark_id=booking.carpark_id,
                booking_id=booking.pk,
            )
            for currency, currency_lines in sorted(lines.items())
        ]
        return [txn for txn in posted if txn is not None]


# --- Payments ---------------------------------------------------------------------------------------------------


def payment_record(
    *,
    booking_id: int,
    amount: Decimal,
    method: str,
    kind: str = Payment.Kind.PAYMENT,
    external_reference: str = "",
    received_at: datetime | None = None,
    recorded_by=None,
) -> Payment:
    """Record money received for a booking (or, kind=refund, paid back) and post it.

    A payment may not exceed what is owed, and a refund may not exceed what is owed back (a cancelled, paid
    booking's credit balance): the booking's balance never changes sign through a payment.
    """
    if not isinstance(amount, Decimal) or amount <= 0 or amount != amount.quantize(CENT):
        raise PaymentInvalid("the amount must be a positive number of whole cents")
    if method not in Payment.Method.values:
        raise PaymentInvalid(f"unknown payment method {method!r}")
    if kind not in Payment.Kind.values:
        raise PaymentInvalid(f"unknown payment kind {kind!r}")
    received_at = received_at or timezone.now()
    with transaction.atomic():
        booking = (
            Booking.objects.select_for_update(of=("self",)).select_related("carpark").filter(pk=booking_id).first()
        )
        if booking is None:
            raise PaymentInvalid(f"no booking {booking_id}")
        balance = selectors.booking_balance(booking.pk)
        if kind == Payment.Kind.PAYMENT and amount > balance:
            raise PaymentInvalid(f"{amount} exceeds the balance due on {booking.reference} ({balance})")
        if kind == Payment.Kind.REFUND and amount > -balance:
            raise PaymentInvalid(f"{amount} exceeds what is owed back on {booking.reference} ({max(-balance, ZERO)})")
        signed = amount if kind == Payment.Kind.PAYMENT else -amount
        txn = transaction_post(
            day=local_date(booking.carpark.tz, received_at),
            kind=LedgerTransaction.Kind.PAYMENT if kind == Payment.Kind.PAYMENT else LedgerTransaction.Kind.REFUND,
            currency=booking.currency,
            lines=[
                Line(chart.CASH_ACCOUNT_FOR_METHOD[method], signed),
                Line(chart.BOOKING_RECEIVABLES, -signed, booking_id=booking.pk),
            ],
            memo=f"{booking.reference} {kind} {method} {external_reference}".strip(),
            carpark_id=booking.carpark_id,
            booking_id=booking.pk,
            created_by=recorded_by,
        )
        payment = Payment.objects.create(
            booking=booking,
            kind=kind,
            method=method,
            amount=amount,
            currency=booking.currency,
            external_reference=external_reference[:100],
            received_at=received_at,
            recorded_by=recorded_by,
            transaction=txn,
        )
        audit_log_record(
            action=f"accounting.{kind}",
            actor=recorded_by,
            actor_label="" if recorded_by else "api",
            obj=payment,
            carpark=booking.carpark,
            data={"booking": booking.reference, "amount": str(amount), "method": method},
        )
    return payment


# --- Overstay ---------------------------------------------------------------------------------------------------

_UNIT_LENGTH = {CarParkRates.Unit.HOUR: timedelta(hours=1), CarParkRates.Unit.DAY: timedelta(days=1)}


@dataclass(frozen=True)
class OverstayQuote:
    units: int
    amount: Decimal


def overstay_charge_compute(
    *, departure: datetime, exited_at: datetime, grace_min: int, rate: Decimal, unit: str
) -> OverstayQuote:
    """The overstay charge: `rate` per started `unit` (hour or day) counted from the end of the grace period.

    Leaving within departure + grace costs nothing; one second after it, one unit; exactly one unit after it,
    still one unit (a unit is "started" only once it has begun).
    """
    overstay = exited_at - (departure + timedelta(minutes=grace_min))
    if overstay <= timedelta(0) or rate <= 0:
        return OverstayQuote(units=0, amount=ZERO)
    units = math.ceil(overstay / _UNIT_LENGTH[unit])
    return OverstayQuote(units=units, amount=(rate * units).quantize(CENT))


def carpark_rates(carpark_id: int) -> CarParkRates:
    rates, _ = CarParkRates.objects.get_or_create(carpark_id=carpark_id)
    return rates


def overstay_charge_post(*, booking_id: int, exited_at: datetime, visit_id: int | None = None) -> OverstayCharge | None:
    """Charge a booking's overstay at exit and post it (Dr booking receivable, Cr overstay revenue).

    Called by the receiver of apps.access's `visit_overstayed` signal, inside the exit's transaction, when an exit
    closes a booking's visit after departure + grace. Uses the car park's `CarParkRates` and `grace_min`.
    Idempotent per visit: a second call for the same visit returns the first charge. No charge due -> None.
    """
    with transaction.atomic():
        if visit_id is not None:
            existing = OverstayCharge.objects.filter(visit_id=visit_id).first()
            if existing is not None:
                return existing
        booking = Booking.objects.select_for_update(of=("self",)).select_related("carpark").get(pk=booking_id)
        rates = carpark_rates(booking.carpark_id)
        quote = overstay_charge_compute(
            departure=booking.departure,
            exited_at=exited_at,
            grace_min=booking.carpark.grace_min,
            rate=rates.overstay_rate,
            unit=rates.overstay_unit,
        )
        if quote.amount <= 0:
            return None
        txn = transaction_post(
            day=local_date(booking.carpark.tz, exited_at),
            kind=LedgerTransaction.Kind.OVERSTAY,
            currency=booking.currency,
            lines=[
                Line(chart.BOOKING_RECEIVABLES, quote.amount, booking_id=booking.pk),
                Line(chart.OVERSTAY_REVENUE, -quote.amount, booking_id=booking.pk),
            ],
            memo=f"{booking.reference} overstay {quote.units} {rates.overstay_unit}(s)",
            carpark_id=booking.carpark_id,
            booking_id=booking.pk,
        )
        return OverstayCharge.objects.create(
            booking=booking,
            visit_id=visit_id,
            exited_at=exited_at,
            units=quote.units,
            unit=rates.overstay_unit,
            rate=rates.overstay_rate,
            amount=quote.amount,
            transaction=txn,
        )


# --- Agents' invoices -------------------------------------------------------------------------------------------

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
)


def _uninvoiced_queryset(*, agent_id: int, currency: str, until: date):
    """Per booking of the agent: what the ledger (up to `until`) says minus what was already invoiced.

    Only bookings with something to invoice or credit come out.
    """
    ids = account_ids()
    ledger = LedgerLine.objects.filter(
        booking_id=OuterRef("pk"), transaction__currency=currency, transaction__date__lte=until
    )

    def ledger_sum(account_code: str):
        rows = ledger.filter(account_id=ids[account_code]).values("booking_id").annotate(s=Sum("amount")).values("s")
        return Coalesce(Subquery(rows, output_field=MONEY), Value(ZERO), output_field=MONEY)

    invoiced = InvoiceLine.objects.filter(booking_id=OuterRef("pk"), invoice__currency=currency).values("booking_id")

    def invoiced_sum(field: str):
        rows = invoiced.annotate(s=Sum(field)).values("s")
        return Coalesce(Subquery(rows, output_field=MONEY), Value(ZERO), output_field=MONEY)

    return (
        Booking.objects.filter(agent_id=agent_id)
        .annotate(
            d_price=-ledger_sum(chart.PARKING_REVENUE) - invoiced_sum("price"),
            d_commission=ledger_sum(chart.COMMISSION_EXPENSE) - invoiced_sum("commission"),
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
                    item["d_price"] = Decimal(str(item["d_price"])).quantize(CENT)
                    item["d_commission"] = Decimal(str(item["d_commission"])).quantize(CENT)
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
        self.gross = self.commission = ZERO
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
        self.invoice.save(update_fields=["gross_total", "commission_total", "total", "line_count"])
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


# --- Periods ----------------------------------------------------------------------------------------------------


def period_close(*, month: date, actor=None) -> AccountingPeriod:
    """Close a month: from now on nothing can be posted with a date in it (PeriodClosed)."""
    month = month_start(month)
    with transaction.atomic():
        AccountingPeriod.objects.bulk_create([AccountingPeriod(month=month)], ignore_conflicts=True)
        period = AccountingPeriod.objects.select_for_update().get(month=month)
        if period.closed_at is None:
            period.closed_at, period.closed_by = timezone.now(), actor
            period.save(update_fields=["closed_at", "closed_by"])
            audit_log_record(
                action="accounting.period_close",
                actor=actor,
                actor_label="" if actor else "system",
                obj=period,
                data={"month": f"{month:%Y-%m}"},
            )
    return period


def period_reopen(*, month: date, actor=None) -> AccountingPeriod:
    month = month_start(month)
    with transaction.atomic():
        AccountingPeriod.objects.bulk_create([AccountingPeriod(month=month)], ignore_conflicts=True)
        period = AccountingPeriod.objects.select_for_update().get(month=month)
        if period.closed_at is not None:
            period.closed_at, period.closed_by = None, None
            period.save(update_fields=["closed_at", "closed_by"])
            audit_log_record(
                action="accounting.period_reopen",
                actor=actor,
                actor_label="" if actor else "system",
                obj=period,
                data={"month": f"{month:%Y-%m}"},
            )
    return period
