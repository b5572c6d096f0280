"""Card clearing against the provider's payouts (for the accountants): each payout to the bank is imported with the
balance transactions it settled, matched to our card payments (by PaymentIntent) and refunds (by refund id), and,
once paid, posted through apps.accounting.services.card_payout_record (Dr bank, Dr card fees, Cr card clearing).

Card clearing (1020) then holds exactly the card money not paid out yet: `clearing_reconciliation` compares it
with our payments and refunds that no payout has settled.
"""

import logging
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from apps.accounting import chart
from apps.accounting.ledger import PostingError
from apps.accounting.models import LedgerLine
from apps.accounting.services import card_payout_record
from apps.payments.models import Payment, Payout, PayoutLine, Refund
from apps.payments.providers import BalanceLine, PayoutInfo, from_minor, get_provider, provider_name, to_minor

log = logging.getLogger(__name__)

CARD_TYPES = {"charge", "payment"}
REFUND_TYPES = {"refund", "payment_refund"}
FEE_TYPES = {"stripe_fee", "tax"}  # the provider's own charges, routine: posted as fees, nothing to match
ZERO = Decimal("0.00")


def payouts_import(*, days: int = 30) -> list[Payout]:
    """Import the provider's payouts created in the last `days` (again: a payout's status moves on, and one that
    was not paid yet is posted once it is). Nothing for the demo provider."""
    name = provider_name()
    provider = get_provider(name)
    since = int((timezone.now() - timedelta(days=days)).timestamp())
    imported = []
    for info in provider.payouts(created_since=since):
        posted = Payout.objects.filter(provider=name, payout_id=info.id, ledger_transaction__isnull=False).exists()
        lines = [] if posted else provider.payout_lines(info.id)  # calls outside any transaction
        imported.append(_payout_store(name, info, lines))
    return imported


def _line(provider: str, payout: Payout, line: BalanceLine) -> PayoutLine:
    row = PayoutLine(
        payout=payout,
        balance_transaction_id=line.id,
        type=line.type,
        amount=from_minor(line.amount_minor),
        fee=from_minor(line.fee_minor),
        net=from_minor(line.net_minor),
        source_id=line.source_id,
        matched=line.type in FEE_TYPES,
    )
    if line.type in CARD_TYPES and line.intent_id:
        row.payment = Payment.objects.filter(provider=provider, intent_id=line.intent_id).first()
        row.matched = (
            row.payment is not None
            and row.payment.status == Payment.Status.SUCCEEDED
            and (to_minor(row.payment.amount), row.payment.currency) == (line.amount_minor, payout.currency)
        )
    elif line.type in REFUND_TYPES and line.source_id:
        row.refund = Refund.objects.filter(provider_refund_id=line.source_id, payment__provider=provider).first()
        row.matched = (
            row.refund is not None
            and row.refund.status == Refund.Status.SUCCEEDED
            and to_minor(row.refund.amount) == -line.amount_minor
        )
    return row


def _payout_store(provider: str, info: PayoutInfo, lines: list[BalanceLine]) -> Payout:
    with transaction.atomic():
        payout, _ = Payout.objects.select_for_update().get_or_create(
            provider=provider,
            payout_id=info.id,
            defaults={
                "amount": ZERO,
                "currency": info.currency,
                "status": info.status,
                "arrival_date": info.arrival_date,
            },
        )
        payout.status = info.status
        if payout.ledger_transaction_id is not None:  # posted: its lines and figures are final
            payout.save(update_fields=["status", "imported_at"])
            return payout
        payout.amount, payout.currency, payout.arrival_date = (
            from_minor(info.amount_minor),
            info.currency,
            info.arrival_date,
        )
        payout.lines.all().delete()
        rows = [_line(provider, payout, line) for line in lines if line.type != "payout"]
        PayoutLine.objects.bulk_create(rows)
        card = [r for r in rows if r.type in CARD_TYPES | REFUND_TYPES]
        payout.settled = sum((r.amount for r in card), ZERO)
        # Bank = settled - fees: what the provider kept on each line, and its own debits (fees, adjustments).
        payout.fees = sum((r.fee for r in rows), ZERO) - sum((r.amount for r in rows if r not in card), ZERO)
        adds_up = sum((r.net for r in rows), ZERO) == payout.amount
        payout.matched = adds_up and all(r.matched for r in rows)
        if info.status == "paid" and adds_up:
            try:
                payout.ledger_transaction = card_payout_record(
                    reference=info.id,
                    arrived_on=info.arrival_date,
                    currency=info.currency,
                    settled=payout.settled,
                    fees=payout.fees,
                )
            except PostingError as exc:  # a closed month: shown unposted; an accountant reopens it or adjusts
                log.warning("payout %s not posted: %s", info.id, exc)
        payout.save()
    return payout


def clearing_reconciliation() -> list[dict]:
    """Per currency: card clearing's balance on the ledger beside the card payments less refunds that no posted
    payout has settled yet. They agree when every card movement is ours and every payout is posted."""
    ledger = (
        LedgerLine.objects.filter(account__code=chart.CARD).values("transaction__currency").annotate(s=Sum("amount"))
    )
    balances = {r["transaction__currency"]: r["s"] or ZERO for r in ledger}
    settled = {"payout_lines__payout__ledger_transaction__isnull": False}
    paid = Payment.objects.filter(status=Payment.Status.SUCCEEDED).exclude(**settled)
    paid = paid.values("currency").annotate(s=Sum("amount"))
    refunded = Refund.objects.filter(status=Refund.Status.SUCCEEDED).exclude(**settled)
    refunded = refunded.values("payment__currency").annotate(s=Sum("amount"))
    awaiting: dict[str, Decimal] = {}
    for r in paid:
        awaiting[r["currency"]] = awaiting.get(r["currency"], ZERO) + r["s"]
    for r in refunded:
        awaiting[r["payment__currency"]] = awaiting.get(r["payment__currency"], ZERO) - r["s"]
    return [
        {
            "currency": cur,
            "clearing": balances.get(cur, ZERO),
            "awaiting": awaiting.get(cur, ZERO),
            "difference": balances.get(cur, ZERO) - awaiting.get(cur, ZERO),
        }
        for cur in sorted(set(balances) | set(awaiting))
    ]
