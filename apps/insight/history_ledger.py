"""The ledger postings of generated history, as the accounting services post them (apps/accounting/chart.py),
VAT-split at the rate in force on each posting's day (apps.accounting.vat)."""

from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from apps.accounting import chart, vat
from apps.accounting.ledger import account_ids
from apps.accounting.models import AccountingPeriod, LedgerLine, LedgerTransaction, Payment
from apps.bookings.models import Booking
from apps.carparks.models import CarPark
from apps.insight.bulk import copy_rows, ids_reserve

BATCH = 5000
CENT = Decimal("0.01")


def history_ledger_post(carpark: CarPark, plans: list) -> int:
    """The postings the accounting services make for these events (chart.py), written in bulk."""
    accounts = account_ids()
    tz = carpark.tz
    txns: list[tuple] = []
    lines: list[tuple] = []
    payments: list[Payment] = []
    ids = iter(ids_reserve(LedgerTransaction, _count_postings(plans)))
    created = timezone.now()

    rates: dict = {}

    def day_of(when: datetime):
        return timezone.localtime(when, tz).date()

    def post(kind, when, b, entries, memo) -> int:
        pk = next(ids)
        txns.append((pk, day_of(when), kind, b.currency, memo, carpark.pk, b.pk, created))
        lines.extend((pk, accounts[a], amount, b.pk, agent, rate) for a, amount, agent, rate in entries if amount)
        return pk

    def sale(b, gross: Decimal, commission: Decimal, when: datetime) -> list[tuple]:
        """A supply at the rate in force that day, split as apps.accounting.sales posts it (net, VAT)."""
        day = day_of(when)
        if day not in rates:
            rates[day] = vat.rate_on(carpark_id=carpark.pk, day=day)
        r = rates[day]
        s = vat.split(gross, r)
        entries = [
            (chart.BOOKING_RECEIVABLES, gross, None, None),
            (chart.PARKING_REVENUE, -s.net, None, r),
            (chart.OUTPUT_VAT, -s.vat, None, r),
        ]
        if commission:
            c = vat.split(commission, r)
            entries += [
                (chart.COMMISSION_EXPENSE, c.net, b.agent_id, r),
                (chart.INPUT_VAT, c.vat, b.agent_id, r),
                (chart.COMMISSION_PAYABLE, -commission, b.agent_id, r),
            ]
        return entries

    for plan in plans:
        b = plan.booking
        commission = b.commission or Decimal("0")
        if plan.amended_at:  # sold shorter and cheaper first; the amendment posts the difference
            part = Decimal("0.8")
            first_gross, first_commission = (b.price * part).quantize(CENT), (commission * part).quantize(CENT)
            first = sale(b, first_gross, first_commission, plan.created)
            post(LedgerTransaction.Kind.BOOKING, plan.created, b, first, f"{b.reference} confirmed")
            change = sale(b, b.price - first_gross, commission - first_commission, plan.amended_at)
            post(LedgerTransaction.Kind.BOOKING, plan.amended_at, b, change, f"{b.reference} amended")
            sold = first + change
        else:
            sold = sale(b, b.price, commission, plan.created)
            post(LedgerTransaction.Kind.BOOKING, plan.created, b, sold, f"{b.reference} confirmed")
        if plan.cancelled_at:  # every split reversed exactly, at the rates charged
            undo = [(a, -amount, agent, rate) for a, amount, agent, rate in sold if amount]
            post(LedgerTransaction.Kind.BOOKING, plan.cancelled_at, b, undo, f"{b.reference} cancelled")
        elif plan.entered and b.agent_id is None:
            paid = [(chart.CARD, b.price, None, None), (chart.BOOKING_RECEIVABLES, -b.price, None, None)]
            pk = post(LedgerTransaction.Kind.PAYMENT, plan.entered, b, paid, f"{b.reference} card")
            payments.append(_payment(b, "payment", b.price, plan.entered, pk))
            if plan.refund:
                back = [(chart.BOOKING_RECEIVABLES, plan.refund, None, None), (chart.CARD, -plan.refund, None, None)]
                pk = post(LedgerTransaction.Kind.REFUND, plan.exited, b, back, f"{b.reference} refund")
                payments.append(_payment(b, "refund", plan.refund, plan.exited, pk))
    months = {row[1].replace(day=1) for row in txns}
    AccountingPeriod.objects.bulk_create([AccountingPeriod(month=m) for m in months], ignore_conflicts=True)
    closed = AccountingPeriod.objects.filter(month__in=months, closed_at__isnull=False).values_list("month", flat=True)
    if closed:
        raise ValueError(f"cannot seed history into closed accounting periods: {sorted(closed)}")
    copy_rows(LedgerTransaction, ["id", "date", "kind", "currency", "memo", "carpark", "booking", "created_at"], txns)
    copy_rows(LedgerLine, ["transaction", "account", "amount", "booking", "agent", "vat_rate"], lines)
    Payment.objects.bulk_create(payments, batch_size=BATCH)
    return len(txns)


def _count_postings(plans: list) -> int:
    return sum(
        1
        + (1 if p.cancelled_at or (p.entered and p.booking.agent_id is None) else 0)
        + (1 if p.refund else 0)
        + (1 if p.amended_at else 0)
        for p in plans
    )


def _payment(b: Booking, kind: str, amount: Decimal, at: datetime, transaction_id: int) -> Payment:
    return Payment(
        booking=b,
        kind=kind,
        method="card",
        amount=amount,
        currency=b.currency,
        received_at=at,
        transaction_id=transaction_id,
    )
