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
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import F, Q

from apps.accounting.ledger import CENT, PostingError
from apps.accounting.models import VatRate

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
