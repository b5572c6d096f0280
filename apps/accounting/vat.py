"""VAT: the rate in force on a day, the split of a VAT-inclusive amount, and the positions a booking holds.

Rules (apps/accounting/README.md, "VAT"):
- Prices are VAT-inclusive at the car park's rate in force on the supply date, which is the posting's accounting date
  (the car park's local date of the sale, amendment, fee or exit).
- Rounding: VAT is rounded per posting, half up (away from zero) to the penny: VAT = round(gross x rate / (1 + rate)),
  and net = gross - VAT. Half-up away from zero is symmetric, so reversing a posting gives exactly its negation.
- A reduction (an amendment down, a cancellation, an allowance) reverses VAT at the rate(s) originally charged,
  latest supply first: a position reversed in full is reversed exactly (its own net and VAT), a part of one is split
  at its rate. So a cancelled booking ends with no VAT on it, whatever the rates in between.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import F, Q, Sum

from apps.accounting import chart
from apps.accounting.ledger import CENT, PostingError
from apps.accounting.models import LedgerLine, VatRate

ZERO = Decimal("0.00")
# The UK standard rate since 4 January 2011: the operator-wide rate seeded by migration 0003 (and re-seeded by
# `rate_on` if a flushed test database lost every period).
SEED_FROM, SEED_RATE = date(2011, 1, 4), Decimal("0.2000")


class VatRateMissing(PostingError):
    pass


def rate_on(*, carpark_id: int | None, day: date) -> Decimal:
    """The VAT rate for a car park's supplies on `day`: its own latest period started by then, else the operator's."""
    for _ in range(2):
        rate = (
            VatRate.objects.filter(Q(carpark__isnull=True) | Q(carpark_id=carpark_id), valid_from__lte=day)
            .order_by(F("carpark_id").asc(nulls_last=True), "-valid_from")
            .values_list("rate", flat=True)
            .first()
        )
        if rate is not None:
            return rate
        if VatRate.objects.exists():
            break
        seed()
    raise VatRateMissing(f"no VAT rate is in force on {day} (add a VAT rate period in the admin)")


def seed(apps=None) -> None:
    """Create the operator-wide standard rate if missing (migration 0003; `apps` is the migration's registry)."""
    model = VatRate if apps is None else apps.get_model("accounting", "VatRate")
    model.objects.get_or_create(
        carpark=None, valid_from=SEED_FROM, defaults={"rate": SEED_RATE, "note": "UK standard rate"}
    )


def percent(rate: Decimal) -> str:
    """0.1750 -> '17.5' (no exponent: Decimal's normalize() alone gives '2E+1' for 20)."""
    return format((rate * 100).normalize(), "f")


def _percent_or_none(rate: Decimal | None) -> str | None:
    return None if rate is None else percent(rate)


def vat_in(gross: Decimal, rate: Decimal) -> Decimal:
    """The VAT in a VAT-inclusive amount, rounded half up (away from zero) to the penny."""
    return (gross * rate / (1 + rate)).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Split:
    """One rate's part of a VAT-split posting (signed like the gross it splits: an increase > 0)."""

    rate: Decimal
    net: Decimal
    vat: Decimal

    @property
    def gross(self) -> Decimal:
        return self.net + self.vat


def split(gross: Decimal, rate: Decimal) -> Split:
    vat = vat_in(gross, rate)
    return Split(rate=rate, net=gross - vat, vat=vat)


def change(held: Iterable[Split], delta: Decimal, rate: Decimal) -> list[Split]:
    """The splits that move a position from `held` (per rate, latest supply first) by `delta` gross.

    An increase is a new supply at `rate` (today's). A decrease unwinds what is held, latest first: a part held in
    full is reversed exactly, a part of one is split at its own rate; anything beyond what is held (a position
    already negative, which the services do not make) is split at `rate`.
    """
    if delta > 0:
        return [split(delta, rate)]
    out: list[Split] = []
    left = -delta
    for part in held:
        if left <= 0:
            break
        if part.gross <= 0:
            continue
        if part.gross <= left:
            out.append(Split(rate=part.rate, net=-part.net, vat=-part.vat))
            left -= part.gross
        else:
            out.append(split(-left, part.rate))
            left = ZERO
    if left > 0:
        out.append(split(-left, rate))
    return out


# --- The VAT return ------------------------------------------------------------------------------------------


def quarter_bounds(year: int, quarter: int) -> tuple[date, date]:
    """A calendar quarter's first and last day (VAT periods ending March, June, September, December; another
    stagger is a `start`/`end` pair)."""
    if not 1 <= quarter <= 4:
        raise ValueError(f"no quarter {quarter}")
    start = date(year, 3 * quarter - 2, 1)
    end = date(year + (quarter == 4), 1 if quarter == 4 else 3 * quarter + 1, 1) - timedelta(days=1)
    return start, end


def quarter_parse(value: str) -> tuple[date, date]:
    """'2026-Q4' -> its first and last day (ValueError if malformed)."""
    year, _, quarter = value.strip().upper().partition("-Q")
    if len(year) != 4 or len(quarter) != 1:
        raise ValueError(f"{value!r} is not a quarter (YYYY-Qn)")
    return quarter_bounds(int(year), int(quarter))


def quarter_of(day: date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def vat_summary(*, start: date, end: date) -> dict:
    """What the VAT return needs for the postings dated from `start` to `end`, per currency: output VAT (2200,
    with the net sales and overstays it was charged on, per rate), input VAT on agents' commission (1400, with the
    net commission) and the net due (output - input; negative = reclaimable)."""
    lines = LedgerLine.objects.filter(transaction__date__gte=start, transaction__date__lte=end)
    codes = [chart.OUTPUT_VAT, chart.INPUT_VAT, chart.PARKING_REVENUE, chart.OVERSTAY_REVENUE, chart.COMMISSION_EXPENSE]
    rows = (
        lines.filter(account__code__in=codes)
        .values("transaction__currency", "account__code", "vat_rate")
        .annotate(s=Sum("amount"))
        .order_by("transaction__currency", "-vat_rate")
    )
    out: dict[str, dict] = {}
    for r in rows:
        cur = out.setdefault(
            r["transaction__currency"],
            {"currency": r["transaction__currency"], "rates": {}, **dict.fromkeys(VAT_SUMMARY_FIELDS, ZERO)},
        )
        code, amount = r["account__code"], (r["s"] or ZERO)
        rate = cur["rates"].setdefault(
            r["vat_rate"],
            {"rate": r["vat_rate"], "percent": _percent_or_none(r["vat_rate"]), "net_sales": ZERO, "output_vat": ZERO},
        )
        if code == chart.OUTPUT_VAT:
            cur["output_vat"] -= amount
            rate["output_vat"] -= amount
        elif code == chart.INPUT_VAT:
            cur["input_vat"] += amount
        elif code == chart.COMMISSION_EXPENSE:
            cur["net_commission"] += amount
        else:
            cur["net_sales"] -= amount
            rate["net_sales"] -= amount
    currencies = []
    for cur in out.values():
        cur["net_due"] = cur["output_vat"] - cur["input_vat"]
        cur["rates"] = [r for r in cur["rates"].values() if r["net_sales"] or r["output_vat"]]
        currencies.append(cur)
    return {"start": start, "end": end, "currencies": currencies}


VAT_SUMMARY_FIELDS = ("output_vat", "net_sales", "input_vat", "net_commission", "net_due")
