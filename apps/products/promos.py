"""Promo codes: whether one applies to a booking (a pure check: refusals say why), and its use counted without
races (one conditional UPDATE in the booking's transaction: of N bookings racing for the last uses, exactly the
limit succeed; the others are refused "used up" and their bookings roll back)."""

from datetime import date

from django.db.models import F, Q

from apps.products.errors import PromoRefused
from apps.products.models import PromoCode


def promo_find(code: str) -> PromoCode:
    promo = PromoCode.objects.filter(code=code.strip().upper(), active=True).first() if code.strip() else None
    if promo is None:
        raise PromoRefused(f"{code.strip()!r} is not a promo code we know")
    return promo


def promo_refusal(
    promo: PromoCode,
    *,
    brand_id: int | None,
    product_id: int,
    booked_on: date,
    arrival: date,
    departure: date,
    days: int,
) -> str | None:
    """Why the code does not apply to this booking, or None. Dates are the car park's local dates."""
    if promo.brand_id is not None and promo.brand_id != brand_id:
        return f"{promo.code} is not valid on this site"
    if promo.product_id is not None and promo.product_id != product_id:
        return f"{promo.code} is not valid for this product"
    if promo.book_from and booked_on < promo.book_from:
        return f"{promo.code} can be used from {promo.book_from:%d %b %Y}"
    if promo.book_until and booked_on > promo.book_until:
        return f"{promo.code} expired on {promo.book_until:%d %b %Y}"
    if promo.stay_from and arrival < promo.stay_from:
        return f"{promo.code} is for stays from {promo.stay_from:%d %b %Y}"
    if promo.stay_until and departure > promo.stay_until:
        return f"{promo.code} is for stays until {promo.stay_until:%d %b %Y}"
    if days < promo.min_days:
        return f"{promo.code} needs a stay of at least {promo.min_days} days"
    if promo.max_uses is not None and promo.uses >= promo.max_uses:
        return f"{promo.code} has been used up"
    return None


def promo_use(*, promo: PromoCode) -> None:
    """Count one use inside the booking's transaction; PromoRefused when the limit is reached (under the row lock
    the UPDATE takes, a racing booking's use is seen before the condition is checked)."""
    within = Q(max_uses__isnull=True) | Q(uses__lt=F("max_uses"))
    if not PromoCode.objects.filter(within, pk=promo.pk).update(uses=F("uses") + 1):
        raise PromoRefused(f"{promo.code} has been used up")
