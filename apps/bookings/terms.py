"""An agent's terms for the price and commission it states on a booking (API and email).

An agent may state its own price and commission. Unchecked, price 0.00 with commission 99,999,999.99 makes the
month's invoice a credit note for the difference. The operator sets, per agent in the admin:

- `commission_tolerance`: a stated commission may exceed the contracted rate by at most this share of the price
  (0.05 = 5 points: 20% on a 15% contract), and never the price itself;
- `price_policy` and `price_tolerance`: a stated price further from the tariff's than this share of it is
  accepted, flagged for review, or refused.

Beyond them the booking services refuse the booking (the API answers 422 naming the field) or, for email, where
the customer has already paid the agent, record it with the tariff's price / contracted commission and flag it
for staff (`Booking.needs_review`, with the reasons in `review_note`; staff clear it in the admin).
"""

from decimal import ROUND_HALF_UP, ROUND_UP, Decimal

from apps.agents.models import Agent
from apps.bookings.models import Booking

PENNY = Decimal("0.01")


class OutOfTerms(ValueError):
    """A stated figure beyond the agent's terms that may not be corrected; `field` is `price` or `commission`."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


def contracted_commission(agent: Agent, price: Decimal) -> Decimal:
    return (price * agent.commission_rate).quantize(PENNY, rounding=ROUND_HALF_UP)


def commission_limit(agent: Agent, price: Decimal) -> Decimal:
    """The most commission the agent may state on `price` (rounded up: an agent's own rounding is not a breach)."""
    share = min(Decimal("1"), agent.commission_rate + agent.commission_tolerance)
    return (price * share).quantize(PENNY, rounding=ROUND_UP)


def agree_price(*, agent: Agent, price: Decimal, reference: Decimal | None, correct: bool) -> tuple[Decimal, str]:
    """The price to record for one the agent stated for the stay, and why it needs review ("" when it does not).

    `reference`: what we would charge for the stay (the product's price, apps.products.pricing; "the tariff's").
    Beyond the tolerance from it: `accept` records it, `flag` records it with a note, `refuse` raises OutOfTerms,
    or with `correct` (email) records the tariff's price with a note. No reference price: no check."""
    if agent.price_policy == Agent.PricePolicy.ACCEPT:
        return price, ""
    tariff = reference
    if tariff is None:
        return price, ""
    if abs(price - tariff) <= tariff * agent.price_tolerance:
        return price, ""
    problem = f"price {price} is more than {agent.price_tolerance:.0%} from the tariff's {tariff}"
    if agent.price_policy == Agent.PricePolicy.FLAG:
        return price, problem
    if not correct:
        raise OutOfTerms(problem, "price")
    return tariff, f"{problem}: recorded at the tariff's price"


def agree_commission(*, agent: Agent, price: Decimal, commission: Decimal, correct: bool) -> tuple[Decimal, str]:
    """The commission to record for one the agent stated, and why it needs review ("" when it does not).

    Over the limit: OutOfTerms, or with `correct` (email) the contracted commission with a note."""
    limit = commission_limit(agent, price)
    if commission <= limit:
        return commission, ""
    problem = f"commission {commission} is more than the {limit} allowed on a price of {price}"
    if not correct:
        raise OutOfTerms(problem, "commission")
    contracted = contracted_commission(agent, price)
    return contracted, f"{problem}: recorded with the contracted {contracted}"


def flag_for_review(booking: Booking, notes: list[str]) -> None:
    """Flag the booking (not saved here) with the reasons, newest last; a flag stays until staff clear it."""
    if notes:
        booking.needs_review = True
        booking.review_note = "\n".join(filter(None, [booking.review_note, *notes]))
