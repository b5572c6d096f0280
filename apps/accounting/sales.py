"""A booking's sale in the ledger, VAT-split: the sale itself (brought to the booking's price by its signals),
the agent's commission, allowances (part of a live booking's price given back) and cancellation fees.

The ledger is the memory of what was posted: per booking, per currency and per VAT rate, the net (4000 / 5100) and
VAT (2200 / 1400) lines carry the rate they were split at, so every change is computed from what is held and a
reduction reverses VAT at the rate originally charged (apps.accounting.vat). services.py re-exports these.
"""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.db.models import Max, Sum

from apps.accounting import chart, vat
from apps.accounting.ledger import CENT, Line, PostingError, account_ids, local_date, transaction_post
from apps.accounting.models import LedgerLine, LedgerTransaction
from apps.bookings.models import Booking
from apps.core.services import audit_log_record

ZERO = Decimal("0.00")
KIND = LedgerTransaction.Kind


class SaleInvalid(PostingError):
    pass


def booking_commission(booking: Booking) -> Decimal:
    """The agent's commission on a booking, VAT-inclusive like the price: the amount the agent stated
    (Booking.commission), else its rate x the price."""
    if booking.agent_id is None:
        return ZERO
    if booking.commission is not None:
        return booking.commission
    return (booking.price * booking.agent.commission_rate).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass
class Held:
    """What the ledger holds for one booking, each position as VAT splits per rate, latest supply first."""

    sale: dict[str, list[vat.Split]] = field(default_factory=dict)  # per currency: sold, less allowances
    allowed: dict[str, Decimal] = field(default_factory=dict)  # per currency: allowances' gross (> 0)
    fees: dict[str, list[vat.Split]] = field(default_factory=dict)  # per currency: cancellation fees
    commission: dict[tuple[str, int | None], list[vat.Split]] = field(default_factory=dict)  # per currency, agent


def held(booking_id: int) -> Held:
    """Read a booking's positions in one query (lines posted before VAT carry no rate: they count as 0%)."""
    ids = account_ids()
    code = {ids[c]: c for c in (chart.PARKING_REVENUE, chart.OUTPUT_VAT, chart.COMMISSION_PAYABLE, chart.INPUT_VAT)}
    rows = (
        LedgerLine.objects.filter(booking_id=booking_id, account_id__in=list(code))
        .exclude(transaction__kind=KIND.OVERSTAY)
        .values("account_id", "transaction__kind", "transaction__currency", "agent_id", "vat_rate")
        .annotate(s=Sum("amount"), last=Max("pk"))
    )
    parts: dict[tuple, list] = {}  # (position, key, rate) -> [net, vat, last line id]
    out = Held()
    for r in rows:
        account, currency, rate = code[r["account_id"]], r["transaction__currency"], r["vat_rate"] or ZERO
        if account in (chart.COMMISSION_PAYABLE, chart.INPUT_VAT):
            where, key = "commission", (currency, r["agent_id"])
        else:
            where, key = ("fees" if r["transaction__kind"] == KIND.CANCELLATION_FEE else "sale"), currency
            if r["transaction__kind"] == KIND.ALLOWANCE:
                out.allowed[currency] = out.allowed.get(currency, ZERO) + r["s"]  # a debit: the sale reduced
        part = parts.setdefault((where, key, rate), [ZERO, ZERO, 0])
        if account == chart.COMMISSION_PAYABLE:
            part[0] -= r["s"]  # gross, held as net until the VAT is known
        elif account == chart.INPUT_VAT:
            part[0], part[1] = part[0] - r["s"], part[1] + r["s"]
        elif account == chart.OUTPUT_VAT:
            part[1] -= r["s"]
        else:
            part[0] -= r["s"]
        part[2] = max(part[2], r["last"])
    for (where, key, rate), (net, tax, _last) in sorted(parts.items(), key=lambda item: -item[1][2]):
        getattr(out, where).setdefault(key, []).append(vat.Split(rate=rate, net=net, vat=tax))
    return out


def gross(splits: list[vat.Split]) -> Decimal:
    return sum((s.gross for s in splits), ZERO)


def sale_lines(booking_id: int, splits: list[vat.Split], revenue: str = chart.PARKING_REVENUE) -> list[Line]:
    """Dr 1100 the gross, Cr revenue the net and Cr 2200 the VAT of each rate's split (a decrease: the reverse)."""
    lines = [Line(chart.BOOKING_RECEIVABLES, gross(splits), booking_id=booking_id)]
    for s in splits:
        lines.append(Line(revenue, -s.net, booking_id=booking_id, vat_rate=s.rate))
        lines.append(Line(chart.OUTPUT_VAT, -s.vat, booking_id=booking_id, vat_rate=s.rate))
    return lines


def commission_lines(booking_id: int, agent_id: int | None, splits: list[vat.Split]) -> list[Line]:
    """Dr 5100 the net and Dr 1400 the VAT of the commission, Cr 2100 its gross (owed to the agent)."""
    lines = []
    for s in splits:
        lines.append(Line(chart.COMMISSION_EXPENSE, s.net, booking_id=booking_id, agent_id=agent_id, vat_rate=s.rate))
        lines.append(Line(chart.INPUT_VAT, s.vat, booking_id=booking_id, agent_id=agent_id, vat_rate=s.rate))
        lines.append(
            Line(chart.COMMISSION_PAYABLE, -s.gross, booking_id=booking_id, agent_id=agent_id, vat_rate=s.rate)
        )
    return lines


def booking_ledger_sync(*, booking: Booking, memo: str = "", new: bool = False) -> list[LedgerTransaction]:
    """Post whatever the ledger lacks for this booking's current price, commission and status, VAT-split.

    The ledger itself is the memory of what was already posted (sale per currency and VAT rate, commission per
    currency, agent and rate), so this is idempotent and does not depend on the `previous_*` values a signal
    carries: a repeated signal or a cancel of a cancelled booking posts nothing. The sale is brought to the price
    less any allowances (0 once cancelled: the allowances are reversed with it, so what is owed back is what was
    paid); a cancellation fee is a position of its own (`cancellation_fee_post`). An increase is a supply at the
    rate in force today; a decrease reverses VAT at the rates charged. A booking moved to a car park in another
    currency (or to another agent) has the old position reversed and the new one posted. Called by the bookings
    signals' receivers, inside the booking service's transaction.

    `new`: the booking was created in this very transaction, so nothing is posted for it yet and no other
    transaction can see its row: the row lock and the look-up of posted positions are skipped (every booking
    made pays for them otherwise).

    No savepoint of its own when nested (the signal's receivers call it inside the booking service's atomic, and
    nothing in between catches its errors): an error rolls back to the caller's savepoint, as it would to one here.
    """
    with transaction.atomic(savepoint=False):
        if new:
            now = Held()
        else:
            booking = (
                Booking.objects.select_for_update(of=("self",)).select_related("agent", "carpark").get(pk=booking.pk)
            )
            now = held(booking.pk)
        day = local_date(booking.carpark.tz)
        rates: dict = {}

        def rate() -> Decimal:
            if not rates:
                rates["today"] = vat.rate_on(carpark_id=booking.carpark_id, day=day)
            return rates["today"]

        live = booking.status not in (Booking.Status.CANCELLED, Booking.Status.EXPIRED)
        lines: dict[str, list[Line]] = {}
        for currency in {booking.currency} | now.sale.keys():
            target = ZERO
            if live and currency == booking.currency:
                target = max(booking.price - now.allowed.get(currency, ZERO), ZERO)
            d = target - gross(now.sale.get(currency, []))
            if d:
                splits = vat.change(now.sale.get(currency, []), d, rate())
                lines.setdefault(currency, []).extend(sale_lines(booking.pk, splits))
        target_commission = {(booking.currency, booking.agent_id): booking_commission(booking) if live else ZERO}
        for key in target_commission.keys() | now.commission.keys():
            d = target_commission.get(key, ZERO) - gross(now.commission.get(key, []))
            if d:
                splits = vat.change(now.commission.get(key, []), d, rate())
                lines.setdefault(key[0], []).extend(commission_lines(booking.pk, key[1], splits))
        posted = [
            transaction_post(
                day=day,
                kind=KIND.BOOKING,
                currency=currency,
                lines=currency_lines,
                memo=memo or f"{booking.reference} {booking.status}",
                carpark_id=booking.carpark_id,
                booking_id=booking.pk,
            )
            for currency, currency_lines in sorted(lines.items())
        ]
        if booking.status == Booking.Status.CANCELLED:
            # The fee a late cancellation keeps (Booking.cancellation_fee, set by booking_cancel) is a position of
            # its own, as cancellation_fee_post posts it: brought to the booking's figure here, so a repeat is a no-op.
            fees = now.fees.get(booking.currency, [])
            d = (booking.cancellation_fee or ZERO) - gross(fees)
            if d:
                posted.append(
                    transaction_post(
                        day=day,
                        kind=KIND.CANCELLATION_FEE,
                        currency=booking.currency,
                        lines=sale_lines(booking.pk, vat.change(fees, d, rate())),
                        memo=f"{booking.reference} cancellation fee",
                        carpark_id=booking.carpark_id,
                        booking_id=booking.pk,
                    )
                )
        return [txn for txn in posted if txn is not None]


def _locked(booking_id: int) -> Booking:
    booking = Booking.objects.select_for_update(of=("self",)).select_related("carpark").filter(pk=booking_id).first()
    if booking is None:
        raise SaleInvalid(f"no booking {booking_id}")
    return booking


def _whole_cents(amount: Decimal) -> None:
    if not isinstance(amount, Decimal) or amount != amount.quantize(CENT) or amount == 0:
        raise SaleInvalid("the amount must be a non-zero number of whole cents")


def _post(booking: Booking, *, kind: str, splits: list[vat.Split], day, memo: str, actor, reason: str):
    txn = transaction_post(
        day=day,
        kind=kind,
        currency=booking.currency,
        lines=sale_lines(booking.pk, splits),
        memo=memo,
        carpark_id=booking.carpark_id,
        booking_id=booking.pk,
        created_by=actor,
    )
    audit_log_record(
        action=f"accounting.{kind}",
        actor=actor,
        actor_label="" if actor else "system",
        obj=txn,
        carpark=booking.carpark,
        data={"booking": booking.reference, "amount": str(gross(splits)), "reason": reason},
    )
    return txn


def sale_allowance_post(
    *, booking_id: int, amount: Decimal, reason: str, actor=None, when: datetime | None = None
) -> LedgerTransaction:
    """Reduce a live booking's sale by `amount` (gross, > 0) without changing its price: a partial refund or a
    goodwill reduction. Its VAT is reversed at the rate(s) the sale was charged at (Dr 4000 net, Dr 2200 VAT,
    Cr 1100 gross); the booking's balance then shows the amount as owed back. `refund_record` calls this for the
    part of a refund beyond what is already owed back. A cancellation later reverses what is left of the sale."""
    _whole_cents(amount)
    if amount < 0 or not reason.strip():
        raise SaleInvalid("an allowance is a positive amount with a reason")
    with transaction.atomic():
        booking = _locked(booking_id)
        if booking.status == Booking.Status.CANCELLED:
            raise SaleInvalid(f"{booking.reference} is cancelled: its sale is already reversed")
        sold = held(booking.pk).sale.get(booking.currency, [])
        if amount > gross(sold):
            raise SaleInvalid(f"{amount} exceeds what is left of the sale of {booking.reference} ({gross(sold)})")
        day = local_date(booking.carpark.tz, when)
        splits = vat.change(sold, -amount, vat.rate_on(carpark_id=booking.carpark_id, day=day))
        memo = f"{booking.reference} allowance: {reason}"
        return _post(booking, kind=KIND.ALLOWANCE, splits=splits, day=day, memo=memo, actor=actor, reason=reason)


def cancellation_fee_post(
    *, booking_id: int, amount: Decimal, reason: str = "cancellation fee", actor=None, when: datetime | None = None
) -> LedgerTransaction:
    """Retain a fee on a cancelled booking (`amount` > 0, gross, at the rate in force on the day), or give part of
    it back (< 0, VAT reversed at the rate charged). Post it after the cancellation, which reversed the whole sale:
    the balance then owes back what was paid less the fee. Dr 1100 / Cr 4000 net, Cr 2200 VAT."""
    _whole_cents(amount)
    with transaction.atomic():
        booking = _locked(booking_id)
        if booking.status != Booking.Status.CANCELLED:
            raise SaleInvalid(f"{booking.reference} is not cancelled: a cancellation fee follows the cancellation")
        fees = held(booking.pk).fees.get(booking.currency, [])
        if gross(fees) + amount < 0:
            raise SaleInvalid(f"{-amount} exceeds the fee retained on {booking.reference} ({gross(fees)})")
        day = local_date(booking.carpark.tz, when)
        splits = vat.change(fees, amount, vat.rate_on(carpark_id=booking.carpark_id, day=day))
        memo = f"{booking.reference} {reason}"
        return _post(booking, kind=KIND.CANCELLATION_FEE, splits=splits, day=day, memo=memo, actor=actor, reason=reason)
