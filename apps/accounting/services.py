"""Accounting writes: the money side of bookings, payments, overstay charges, agents' invoices, period close.

Each function owns its `transaction.atomic` (nested inside the caller's when called from a booking signal, so the
ledger commits or rolls back with the booking). Amounts are Decimal in the booking's (car park's) currency.
"""

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import DecimalField
from django.utils import timezone

from apps.accounting import chart, sales, selectors, vat
from apps.accounting.ledger import (
    CENT,
    Line,
    PeriodClosed,
    PostingError,
    local_date,
    month_start,
    transaction_post,
)
from apps.accounting.models import (
    AccountingPeriod,
    CarParkRates,
    LedgerTransaction,
    OverstayCharge,
    Payment,
)
from apps.accounting.vat import VatRateMissing
from apps.bookings.models import Booking
from apps.core.services import audit_log_record

__all__ = ["PeriodClosed", "PostingError", "VatRateMissing"]

ZERO = Decimal("0.00")
MONEY = DecimalField(max_digits=14, decimal_places=2)


class PaymentInvalid(PostingError):
    pass


class InvoiceInvalid(PostingError):
    pass


# --- Bookings: the sale, its commission, allowances and cancellation fees, VAT-split (sales.py) ---------------

booking_commission = sales.booking_commission
booking_ledger_sync = sales.booking_ledger_sync
sale_allowance_post = sales.sale_allowance_post
cancellation_fee_post = sales.cancellation_fee_post
SaleInvalid = sales.SaleInvalid


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
    reason: str = "",
    allow_credit: bool = False,
) -> Payment:
    """Record money received for a booking (or, kind=refund, paid back) and post it.

    A payment may not exceed what is owed, and a refund may not exceed what is owed back (a cancelled, paid
    booking's credit balance): the booking's balance never changes sign through a payment. `allow_credit`: a card
    payment that has already been taken (apps.payments) is recorded whatever is owed; a credit balance is refunded.
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
        if kind == Payment.Kind.PAYMENT and amount > balance and not allow_credit:
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
            memo=f"{booking.reference} {kind} {method} {external_reference} {reason}".strip(),
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
            data={"booking": booking.reference, "amount": str(amount), "method": method}
            | ({"reason": reason} if reason else {}),
        )
    return payment


def refund_record(
    *,
    booking_id: int,
    amount: Decimal,
    method: str,
    reason: str,
    external_reference: str = "",
    received_at: datetime | None = None,
    recorded_by=None,
) -> Payment:
    """Pay money back on a booking, VAT-correct, with a reason (audited). The one refund for callers that give
    money back (staff's partial refunds, a provider's refund):

    - what the booking already owes back (a cancellation or an amendment down reduced the sale, and its VAT, when
      it happened) is simply paid back;
    - any more is a reduction of a live booking's sale: it is posted first as an allowance (`sale_allowance_post`,
      Dr 4000 net, Dr 2200 VAT at the rate charged), then paid back.

    Either way the refund itself is Dr 1100 / Cr cash, card or bank. More than was paid is refused (PaymentInvalid,
    nothing posted); so is a cancelled booking's refund beyond what it owes back (SaleInvalid).
    """
    if not reason.strip():
        raise PaymentInvalid("a refund needs a reason")
    if not isinstance(amount, Decimal) or amount <= 0 or amount != amount.quantize(CENT):
        raise PaymentInvalid("the amount must be a positive number of whole cents")
    with transaction.atomic():
        booking = Booking.objects.select_for_update(of=("self",)).filter(pk=booking_id).first()
        if booking is None:
            raise PaymentInvalid(f"no booking {booking_id}")
        beyond = amount - max(-selectors.booking_balance(booking_id), ZERO)
        if beyond > 0:
            sales.sale_allowance_post(booking_id=booking_id, amount=beyond, reason=reason, actor=recorded_by)
        return payment_record(
            booking_id=booking_id,
            amount=amount,
            method=method,
            kind=Payment.Kind.REFUND,
            external_reference=external_reference,
            reason=reason,
            received_at=received_at,
            recorded_by=recorded_by,
        )


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
    """Charge a booking's overstay at exit and post it (Dr booking receivable gross, Cr overstay revenue net and
    Cr output VAT, at the rate in force on the exit's local date).

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
        day = local_date(booking.carpark.tz, exited_at)
        split = vat.split(quote.amount, vat.rate_on(carpark_id=booking.carpark_id, day=day))
        txn = transaction_post(
            day=day,
            kind=LedgerTransaction.Kind.OVERSTAY,
            currency=booking.currency,
            lines=sales.sale_lines(booking.pk, [split], revenue=chart.OVERSTAY_REVENUE),
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


# --- Card payouts -----------------------------------------------------------------------------------------------


def card_payout_record(
    *, reference: str, arrived_on: date, currency: str, settled: Decimal, fees: Decimal
) -> LedgerTransaction:
    """A card acquirer's payout to the bank (apps.payments imports Stripe's): `settled` = the card payments less
    refunds it clears from card clearing, `fees` = what the acquirer kept; the bank receives the difference.
        Dr 1030 Bank (settled - fees)   Dr 5200 Card processing fees (fees)   Cr 1020 Card clearing (settled)"""
    for amount in (settled, fees):
        if not isinstance(amount, Decimal) or amount != amount.quantize(CENT):
            raise PostingError("amounts must be whole cents")
    return transaction_post(
        day=arrived_on,
        kind=LedgerTransaction.Kind.CARD_PAYOUT,
        currency=currency,
        lines=[Line(chart.BANK, settled - fees), Line(chart.CARD_FEES, fees), Line(chart.CARD, -settled)],
        memo=f"card payout {reference}",
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
