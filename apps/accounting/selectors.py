"""Accounting reads: balances, trial balance, ledger by account and period, agent statements, invoices.

All return concrete data (dicts, lists, dataclasses); the CSV exports take iterators that stream from the database.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db.models import Q, Sum

from apps.accounting import chart
from apps.accounting.models import Account, AccountingPeriod, Invoice, InvoiceLine, LedgerLine, Payment
from apps.agents.models import Agent
from apps.bookings.models import Booking

ZERO = Decimal("0.00")
CENT = Decimal("0.01")


def _money(value) -> Decimal:
    """A sum from the database as whole cents."""
    return Decimal(str(value or 0)).quantize(CENT)


def agent_ids_to_invoice() -> list[int]:
    return list(Agent.objects.filter(bookings__isnull=False).distinct().order_by("pk").values_list("pk", flat=True))


def booking_balance(booking_id: int) -> Decimal:
    """What is still owed on a booking (negative: owed back). See chart.py for what moves it."""
    total = LedgerLine.objects.filter(booking_id=booking_id, account__code=chart.BOOKING_RECEIVABLES).aggregate(
        s=Sum("amount")
    )["s"]
    return total or ZERO


def booking_statement(*, booking_id: int) -> dict:
    booking = Booking.objects.select_related("carpark", "agent", "customer").get(pk=booking_id)
    lines = list(
        LedgerLine.objects.filter(booking_id=booking_id, account__code=chart.BOOKING_RECEIVABLES)
        .order_by("transaction__date", "transaction_id")
        .values("transaction__date", "transaction__kind", "transaction__memo", "amount")
    )
    payments = list(
        Payment.objects.filter(booking_id=booking_id)
        .order_by("received_at")
        .values("kind", "method", "amount", "external_reference", "received_at")
    )
    return {
        "booking": {
            "id": booking.pk,
            "reference": booking.reference,
            "carpark": booking.carpark.code,
            "carpark_id": booking.carpark_id,
            "agent": booking.agent.code if booking.agent else "",
            "customer": booking.customer.name,
            "status": booking.status,
            "price": booking.price,
            "currency": booking.currency,
        },
        "lines": lines,
        "payments": payments,
        "balance": sum((line["amount"] for line in lines), ZERO),
    }


@dataclass
class TrialBalanceRow:
    code: str
    name: str
    currency: str
    debits: Decimal
    credits: Decimal

    @property
    def balance(self) -> Decimal:
        return self.debits - self.credits


@dataclass
class TrialBalance:
    until: date | None
    rows: list[TrialBalanceRow] = field(default_factory=list)

    def totals(self) -> dict[str, tuple[Decimal, Decimal]]:
        """Debits and credits per currency (they must be equal)."""
        out: dict[str, tuple[Decimal, Decimal]] = {}
        for row in self.rows:
            d, c = out.get(row.currency, (ZERO, ZERO))
            out[row.currency] = (d + row.debits, c + row.credits)
        return out

    @property
    def balanced(self) -> bool:
        return all(d == c for d, c in self.totals().values())


def trial_balance(*, until: date | None = None) -> TrialBalance:
    """Every account's debits, credits and balance up to and including `until` (all time when None)."""
    lines = LedgerLine.objects.all()
    if until is not None:
        lines = lines.filter(transaction__date__lte=until)
    rows = (
        lines.values("account__code", "account__name", "transaction__currency")
        .annotate(debits=Sum("amount", filter=Q(amount__gt=0)), credits=Sum("amount", filter=Q(amount__lt=0)))
        .order_by("transaction__currency", "account__code")
    )
    return TrialBalance(
        until=until,
        rows=[
            TrialBalanceRow(
                code=r["account__code"],
                name=r["account__name"],
                currency=r["transaction__currency"],
                debits=_money(r["debits"]),
                credits=-_money(r["credits"]),
            )
            for r in rows
        ],
    )


def accounts() -> list[dict]:
    return list(Account.objects.order_by("code").values("code", "name", "kind", "description"))


def _account_lines(*, code: str, start: date, end: date):
    return (
        LedgerLine.objects.filter(account__code=code, transaction__date__gte=start, transaction__date__lte=end)
        .order_by("transaction__currency", "transaction__date", "transaction_id", "pk")
        .values(
            "transaction_id",
            "transaction__date",
            "transaction__kind",
            "transaction__memo",
            "transaction__currency",
            "amount",
            "booking__reference",
            "agent__code",
        )
    )


def account_opening_balances(*, code: str, before: date) -> dict[str, Decimal]:
    rows = (
        LedgerLine.objects.filter(account__code=code, transaction__date__lt=before)
        .values("transaction__currency")
        .annotate(s=Sum("amount"))
    )
    return {r["transaction__currency"]: r["s"] for r in rows}


def account_ledger(*, code: str, start: date, end: date, limit: int = 500) -> dict:
    """An account's lines in a period with running balances per currency (the first `limit` lines for screens)."""
    opening = account_opening_balances(code=code, before=start)
    running = dict(opening)
    lines = []
    for row in _account_lines(code=code, start=start, end=end)[:limit]:
        cur = row["transaction__currency"]
        running[cur] = running.get(cur, ZERO) + row["amount"]
        debit, credit = (row["amount"], None) if row["amount"] > 0 else (None, -row["amount"])
        lines.append({**row, "debit": debit, "credit": credit, "balance": running[cur]})
    totals = (
        LedgerLine.objects.filter(account__code=code, transaction__date__gte=start, transaction__date__lte=end)
        .values("transaction__currency")
        .annotate(debits=Sum("amount", filter=Q(amount__gt=0)), credits=Sum("amount", filter=Q(amount__lt=0)))
    )
    return {
        "account": Account.objects.values("code", "name", "kind").get(code=code),
        "opening": opening,
        "lines": lines,
        "truncated": len(lines) == limit,
        "totals": {
            t["transaction__currency"]: {"debits": _money(t["debits"]), "credits": -_money(t["credits"])}
            for t in totals
        },
    }


def account_ledger_rows(*, code: str, start: date, end: date) -> Iterator[dict]:
    """All of an account's lines in a period, streamed (CSV export)."""
    return _account_lines(code=code, start=start, end=end).iterator(chunk_size=2000)


# An agent statement's invoice columns, in order (the page and the CSV export show the same ones).
STATEMENT_INVOICE_FIELDS = (
    "number",
    "kind",
    "period",
    "issued_on",
    "currency",
    "gross_total",
    "commission_total",
    "total",
    "line_count",
    "status",
    "paid_on",
)


def agent_statement(*, agent_id: int, start: date, end: date) -> dict:
    """An agent's account with us: invoices and credit notes issued, payments, and what it owes (1200)."""
    agent = Agent.objects.values("id", "code", "name").get(pk=agent_id)
    invoices = list(
        Invoice.objects.filter(agent_id=agent_id, issued_on__gte=start, issued_on__lte=end)
        .order_by("issued_on", "number")
        .values("id", *STATEMENT_INVOICE_FIELDS)
    )
    owed = (
        LedgerLine.objects.filter(agent_id=agent_id, account__code=chart.AGENT_RECEIVABLES)
        .values("transaction__currency")
        .annotate(
            opening=Sum("amount", filter=Q(transaction__date__lt=start)),
            closing=Sum("amount", filter=Q(transaction__date__lte=end)),
        )
    )
    unbilled = (
        LedgerLine.objects.filter(agent_id=agent_id, account__code=chart.COMMISSION_PAYABLE)
        .values("transaction__currency")
        .annotate(s=Sum("amount", filter=Q(transaction__date__lte=end)))
    )
    by_currency: dict[str, dict] = {}
    for r in owed:
        row = by_currency.setdefault(r["transaction__currency"], {"commission_not_invoiced": ZERO})
        row.update(opening=r["opening"] or ZERO, closing=r["closing"] or ZERO)
    for r in unbilled:
        row = by_currency.setdefault(r["transaction__currency"], {"opening": ZERO, "closing": ZERO})
        row["commission_not_invoiced"] = -(r["s"] or ZERO)
    return {"agent": agent, "start": start, "end": end, "invoices": invoices, "receivable": by_currency}


def agents() -> list[dict]:
    return list(Agent.objects.order_by("code").values("id", "code", "name", "commission_rate"))


def invoices(*, agent_id: int | None = None, limit: int = 200) -> list[dict]:
    qs = Invoice.objects.select_related("agent").order_by("-issued_on", "-number")
    if agent_id:
        qs = qs.filter(agent_id=agent_id)
    return list(
        qs.values(
            "id", "number", "kind", "agent__code", "period", "issued_on", "currency", "total", "line_count", "status"
        )[:limit]
    )


def invoice_detail(*, invoice_id: int) -> dict:
    """An invoice's header and totals, with what a VAT invoice shows: the seller (settings VAT_SELLER_NAME,
    VAT_SELLER_ADDRESS, VAT_NUMBER), and per VAT rate the net, VAT and gross of the bookings and of the commission."""
    invoice = Invoice.objects.select_related("agent").get(pk=invoice_id)
    by_rate = (
        InvoiceLine.objects.filter(invoice_id=invoice_id)
        .values("vat_rate")
        .annotate(
            price=Sum("price"), price_vat=Sum("price_vat"), commission=Sum("commission"), c_vat=Sum("commission_vat")
        )
        .order_by("-vat_rate")
    )
    return {
        "id": invoice.pk,
        "number": invoice.number,
        "kind": invoice.kind,
        "kind_label": invoice.get_kind_display(),
        "agent": {"code": invoice.agent.code, "name": invoice.agent.name, "vat_number": invoice.agent.vat_number},
        "period": invoice.period,
        "issued_on": invoice.issued_on,
        "currency": invoice.currency,
        "gross_total": invoice.gross_total,
        "commission_total": invoice.commission_total,
        "total": invoice.total,
        "line_count": invoice.line_count,
        "status": invoice.status,
        "paid_on": invoice.paid_on,
        "price_vat_total": invoice.price_vat_total,
        "price_net_total": invoice.gross_total - invoice.price_vat_total,
        "commission_vat_total": invoice.commission_vat_total,
        "commission_net_total": invoice.commission_total - invoice.commission_vat_total,
        "seller": {
            "name": settings.VAT_SELLER_NAME,
            "address": settings.VAT_SELLER_ADDRESS,
            "vat_number": settings.VAT_NUMBER,
        },
        "vat_rates": [
            {
                "rate": r["vat_rate"],
                "percent": format((r["vat_rate"] * 100).normalize(), "f"),
                "price_net": r["price"] - r["price_vat"],
                "price_vat": r["price_vat"],
                "price": r["price"],
                "commission_net": r["commission"] - r["c_vat"],
                "commission_vat": r["c_vat"],
                "commission": r["commission"],
            }
            for r in by_rate
        ],
    }


INVOICE_LINE_FIELDS = (
    "reference",
    "agent_ref",
    "description",
    "price",
    "commission",
    "amount",
    "vat_rate",
    "price_vat",
    "commission_vat",
)


def invoice_line_rows(*, invoice_id: int) -> Iterator[dict]:
    """An invoice's lines, streamed in booking order (printable page and CSV export)."""
    return (
        InvoiceLine.objects.filter(invoice_id=invoice_id)
        .order_by("pk")
        .values(*INVOICE_LINE_FIELDS)
        .iterator(chunk_size=2000)
    )


def periods() -> list[dict]:
    return list(AccountingPeriod.objects.order_by("-month").values("month", "closed_at", "closed_by__username"))


# --- Chunks for streamed exports (keyset pagination: each chunk is one short query, flat memory) -----------------


def invoice_line_chunk(*, invoice_id: int, after_pk: int = 0, limit: int = 2000) -> list[dict]:
    return list(
        InvoiceLine.objects.filter(invoice_id=invoice_id, pk__gt=after_pk)
        .order_by("pk")
        .values("pk", *INVOICE_LINE_FIELDS)[:limit]
    )


def account_line_chunk(*, code: str, start: date, end: date, after_pk: int = 0, limit: int = 2000) -> list[dict]:
    """An account's lines in a period in posting order (line id), for the CSV export."""
    return list(
        LedgerLine.objects.filter(
            account__code=code, transaction__date__gte=start, transaction__date__lte=end, pk__gt=after_pk
        )
        .order_by("pk")
        .values(
            "pk",
            "transaction_id",
            "transaction__date",
            "transaction__kind",
            "transaction__currency",
            "transaction__memo",
            "amount",
            "booking__reference",
            "agent__code",
        )[:limit]
    )


def booking_id_by_reference(reference: str) -> int | None:
    return Booking.objects.filter(reference=reference.strip().upper()).values_list("pk", flat=True).first()
