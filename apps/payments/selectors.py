"""Card payments as staff see them: a booking's payments and refunds, what failed, and the provider's payouts."""

from django.db.models import Prefetch

from apps.payments.models import Payment, Payout, PayoutLine, Refund


def booking_payments(*, booking_id: int) -> list[dict]:
    from apps.payments.services import refundable

    payments = Payment.objects.filter(booking_id=booking_id).prefetch_related("refunds").order_by("created_at")
    return [
        {
            "payment": p,
            "refunds": list(p.refunds.all().order_by("created_at")),
            "refundable": refundable(p),
        }
        for p in payments
    ]


def failed_payments(*, carpark_ids: list[int], limit: int = 200) -> dict:
    """Payments that did not go through (declined, cancelled, mismatched) and refunds that failed, newest first."""
    payments = (
        Payment.objects.filter(booking__carpark_id__in=carpark_ids, status__in=["failed", "mismatch"])
        .select_related("booking")
        .order_by("-updated_at")[:limit]
    )
    refunds = (
        Refund.objects.filter(payment__booking__carpark_id__in=carpark_ids, status__in=["failed", "pending"])
        .select_related("payment__booking")
        .order_by("-updated_at")[:limit]
    )
    return {"payments": list(payments), "refunds": list(refunds)}


def payouts_list(*, limit: int = 100) -> list:
    """The provider's payouts, newest first, with the balance transactions each settled and what they matched."""
    lines = PayoutLine.objects.select_related("payment__booking", "refund__payment__booking").order_by("pk")
    return list(Payout.objects.prefetch_related(Prefetch("lines", queryset=lines))[:limit])
