"""The chart of accounts: fixed codes the services post to (seeded by a data migration, kept in sync by `ensure`).

How each money event posts (Dr = positive amount, Cr = negative). Prices are VAT-inclusive: every sale, amendment,
cancellation, allowance, cancellation fee and overstay is split into net and VAT (apps.accounting.vat), the net and
VAT lines tagged with the rate:

- booking sold / amended / cancelled (the booking's "sold" amount follows its price; 0 once cancelled):
    Dr 1100 Booking receivables [booking] (gross)
        Cr 4000 Parking revenue [booking] (net)   Cr 2200 Output VAT [booking] (VAT)      (the change in price)
    Dr 5100 Commission expense (net)   Dr 1400 Input VAT (VAT)
        Cr 2100 Commission payable [agent, booking] (gross)                                (the change in commission)
- allowance (part of a live booking's price refunded) and cancellation fee: as a sale, negative or positive
- payment received:   Dr 10x0 cash/card/bank     Cr 1100 [booking]      (a refund is the reverse; no VAT: the
  VAT moved when the sale did)
- overstay charged:   Dr 1100 [booking] (gross)  Cr 4100 Overstay revenue [booking] (net)  Cr 2200 (VAT)
- agent invoice issued (lines = what changed per booking since last invoiced):
    Dr 1200 Agent receivables [agent] (net)     Dr 2100 [agent] (commission)    Cr 1100 [booking] (each price)
  a credit note is the same with the signs reversed (cancellations or reductions after invoicing).
- agent invoice paid: Dr 1030 Bank               Cr 1200 [agent]
- card payout (the acquirer settles card clearing to the bank, keeping its fees; apps.payments imports Stripe's):
    Dr 1030 Bank (what arrived)   Dr 5200 Card processing fees (fees)   Cr 1020 Card clearing (payments - refunds)

So a booking's balance (1100 for that booking) = sold price + overstay - payments + refunds - amounts moved to an
agent's invoice: for an agent's booking the agent, not the customer, owes the money once it is invoiced.
There is no separate refunds-liability account: a cancelled, paid booking shows a credit balance on 1100
("refund due") until the refund is recorded; the sub-ledger per booking is where staff look for it.
"""

from dataclasses import dataclass

CASH = "1010"
CARD = "1020"
BANK = "1030"
BOOKING_RECEIVABLES = "1100"
AGENT_RECEIVABLES = "1200"
INPUT_VAT = "1400"
COMMISSION_PAYABLE = "2100"
OUTPUT_VAT = "2200"
PARKING_REVENUE = "4000"
OVERSTAY_REVENUE = "4100"
COMMISSION_EXPENSE = "5100"
CARD_FEES = "5200"

# Where money received by each payment method lands.
CASH_ACCOUNT_FOR_METHOD = {"cash": CASH, "card": CARD, "bank_transfer": BANK}


@dataclass(frozen=True)
class AccountDef:
    code: str
    name: str
    kind: str
    description: str


CHART = [
    AccountDef(CASH, "Cash", "asset", "Cash taken for bookings and overstays."),
    AccountDef(CARD, "Card clearing", "asset", "Card payments awaiting settlement by the acquirer."),
    AccountDef(BANK, "Bank", "asset", "Bank transfers, including agents' invoice payments."),
    AccountDef(
        BOOKING_RECEIVABLES,
        "Booking receivables",
        "asset",
        "Per booking: price and overstay charges not yet paid or moved to an agent's invoice.",
    ),
    AccountDef(AGENT_RECEIVABLES, "Agent receivables", "asset", "Per agent: invoiced and not yet paid."),
    AccountDef(INPUT_VAT, "Input VAT", "asset", "VAT on agents' commission, reclaimable on the VAT return."),
    AccountDef(
        COMMISSION_PAYABLE,
        "Agent commission payable",
        "liability",
        "Per agent: commission earned on bookings, netted off when the agent is invoiced.",
    ),
    AccountDef(
        OUTPUT_VAT,
        "Output VAT",
        "liability",
        "VAT in the prices of bookings, cancellation fees and overstays, due on the VAT return.",
    ),
    AccountDef(
        PARKING_REVENUE,
        "Parking revenue",
        "income",
        "Bookings sold (net of VAT), less amendments, cancellations and allowances.",
    ),
    AccountDef(OVERSTAY_REVENUE, "Overstay revenue", "income", "Overstay charges at exit (net of VAT)."),
    AccountDef(
        COMMISSION_EXPENSE, "Agent commission expense", "expense", "Commission on agents' bookings (net of VAT)."
    ),
    AccountDef(CARD_FEES, "Card processing fees", "expense", "What the card acquirer (Stripe) keeps from its payouts."),
]


def ensure(apps=None) -> None:
    """Create or update the chart's accounts (idempotent). `apps` is the migration state's registry, if any."""
    if apps is None:
        from apps.accounting.models import Account
    else:
        Account = apps.get_model("accounting", "Account")
    for acc in CHART:
        Account.objects.update_or_create(
            code=acc.code, defaults={"name": acc.name, "kind": acc.kind, "description": acc.description}
        )
