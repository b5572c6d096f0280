"""Accounting writes: the money side of bookings, payments, overstay charges, agents' invoices, period close.

Each function owns its `transaction.atomic` (nested inside the caller's when called from a booking signal, so the
ledger commits or rolls back with the booking). Amounts are Decimal in the booking's (car park's) currency.
"""

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.db.models import DecimalField, Sum
from django.utils import timezone

from apps.accounting import chart, selectors
from apps.accounting.ledger import (
    CENT,
    Line,
    PeriodClosed,
    PostingError,
    account_ids,
    local_date,
    month_start,
    transaction_post,
)
from apps.accounting.models import (
    AccountingPeriod,
    CarParkRates,
    LedgerLine,
    LedgerTransaction,
    OverstayCharge,
    Payment,
)
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
            departure=booking.due_out,  # the booked departure, or later when the return flight landed late
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
