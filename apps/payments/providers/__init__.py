"""Payment providers behind one small interface: create an intent, confirm it with a card token, retrieve it,
refund it, parse (and verify) a webhook; and, for the accountants, list its payouts to the bank and what each
settled (balance transactions). Another provider is one module here with these functions.

`stripe` when STRIPE_SECRET_KEY is set, else `demo` (no card is charged). Amounts cross this line in minor units
(pence), as the providers count them.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Protocol

from django.conf import settings


class ProviderUnavailable(Exception):
    """The provider could not be reached or failed: nothing is known to have changed; try again."""


class CardDeclined(Exception):
    """The card was refused; the message is the provider's, for the customer."""


class BadSignature(Exception):
    """A webhook whose signature does not verify (or is missing)."""


@dataclass(frozen=True)
class Intent:
    id: str
    status: str  # Stripe's words: requires_payment_method, requires_action, processing, succeeded, canceled, ...
    amount_minor: int
    currency: str  # upper case, as our bookings keep it
    client_secret: str = ""
    error: str = ""


@dataclass(frozen=True)
class RefundResult:
    id: str
    status: str  # succeeded, pending, failed


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    object_id: str  # the PaymentIntent (or refund) the event is about
    intent_id: str  # the PaymentIntent concerned, if any
    # The intent as the signed event carries it, when it has succeeded: a final state, so no later event can undo
    # it and it is applied without asking the provider again. Other states are read back (order is not promised).
    succeeded: Intent | None = None


@dataclass(frozen=True)
class PayoutInfo:
    id: str
    amount_minor: int  # what reaches the bank
    currency: str  # upper case
    status: str  # Stripe's words: pending, in_transit, paid, failed, canceled
    arrival_date: date


@dataclass(frozen=True)
class BalanceLine:
    """One balance transaction a payout settles: a card payment (`charge`, `payment`), a refund, or the provider's
    own (fees, adjustments). Amounts signed as the provider's balance moves; `fee` is what it kept."""

    id: str
    type: str
    amount_minor: int
    fee_minor: int
    net_minor: int
    source_id: str  # the charge or refund
    intent_id: str = ""  # a charge's PaymentIntent


class Provider(Protocol):
    name: str

    def create_intent(self, *, amount_minor: int, currency: str, metadata: dict, idempotency_key: str) -> Intent: ...

    def confirm_intent(self, *, intent_id: str, card_token: str, idempotency_key: str) -> Intent: ...

    def retrieve_intent(self, intent_id: str) -> Intent: ...

    def refund(self, *, intent_id: str, amount_minor: int, idempotency_key: str) -> RefundResult: ...

    def parse_webhook(self, payload: bytes, signature: str) -> Event: ...

    def payouts(self, *, created_since: int) -> list[PayoutInfo]: ...

    def payout_lines(self, payout_id: str) -> list[BalanceLine]: ...


def to_minor(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


def from_minor(amount_minor: int) -> Decimal:
    return (Decimal(amount_minor) / 100).quantize(Decimal("0.01"))


def provider_name() -> str:
    return "stripe" if settings.STRIPE_SECRET_KEY else "demo"


def get_provider(name: str | None = None) -> Provider:
    name = name or provider_name()
    if name == "stripe":
        from apps.payments.providers.stripe import StripeProvider

        return StripeProvider()
    if name == "demo":
        from apps.payments.providers.demo import DemoProvider

        return DemoProvider()
    raise ValueError(f"unknown payment provider {name!r}")
