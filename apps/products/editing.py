"""Staff's edits of what a car park sells beside its calendar ranges (apps.products.calendar): price rules
(weekday, lead time, occupancy), channel allocations and promo codes. Each write checks what the database cannot
(raising ValidationError naming the field, for the page's form), owns its transaction, is audited
(`products.<entity>_<action>`, the values before and after) and makes the next quote read the catalogue again.
"""

from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.agents.models import Agent
from apps.carparks.models import Brand, CarPark
from apps.core.services import audit_log_record
from apps.products.models import WEB, ChannelAllocation, PriceRule, Product, PromoCode
from apps.products.selectors import forget_catalogue

THRESHOLDS = {  # what a rule's threshold means, and its bounds
    PriceRule.Kind.WEEKDAY: (1, 7, "a weekday is 1 (Monday) to 7 (Sunday)"),
    PriceRule.Kind.LEAD_TIME: (1, 730, "days ahead: 1 to 730"),
    PriceRule.Kind.OCCUPANCY: (1, 100, "percent sold: 1 to 100"),
}


def _rule_data(rule: PriceRule) -> dict:
    return {"product": rule.product.code, "kind": rule.kind, "threshold": rule.threshold, "percent": f"{rule.percent}"}


def price_rule_save(
    *, product: Product, kind: str, threshold: int, percent: Decimal, rule: PriceRule | None = None, actor=None
) -> PriceRule:
    """Add a rule to the product, or change `rule` (of the same product). One rule per kind and threshold."""
    if kind not in THRESHOLDS:
        raise ValidationError({"kind": f"one of {', '.join(THRESHOLDS)}"})
    low, high, meaning = THRESHOLDS[kind]
    if not low <= threshold <= high:
        raise ValidationError({"threshold": f"For a {kind.replace('_', ' ')} rule, {meaning}."})
    if not Decimal("-90") <= percent <= Decimal("500"):
        raise ValidationError({"percent": "Between -90 (90% cheaper) and +500."})
    if rule is not None and rule.product_id != product.pk:
        raise ValidationError("That rule is another product's.")
    with transaction.atomic():
        same = PriceRule.objects.select_for_update().filter(product=product, kind=kind, threshold=threshold)
        if same.exclude(pk=rule.pk if rule else None).exists():
            raise ValidationError({"threshold": f"{product.code} already has a {kind} rule at {threshold}."})
        before = _rule_data(rule) if rule else None
        rule = rule or PriceRule(product=product)
        rule.kind, rule.threshold, rule.percent = kind, threshold, percent
        rule.save()
        audit_log_record(
            action="products.price_rule_save",
            actor=actor,
            obj=rule,
            carpark=product.carpark,
            data={"before": before, "after": _rule_data(rule)},
        )
    forget_catalogue(product.carpark_id)
    return rule


def price_rule_delete(*, rule: PriceRule, actor=None) -> None:
    with transaction.atomic():
        audit_log_record(
            action="products.price_rule_delete",
            actor=actor,
            obj=rule,
            carpark=rule.product.carpark,
            data={"before": _rule_data(rule)},
        )
        rule.delete()
    forget_catalogue(rule.product.carpark_id)


def channel_allocation_set(*, product: Product, channel: str, spaces: int | None, actor=None) -> None:
    """The channel's share of the product's spaces per day (`spaces` None: no share of its own, the product's
    spaces only). The channel: "web" or an agent that sells at the car park. Bookings already held stand."""
    channel = channel.strip()
    if channel != WEB and not Agent.objects.filter(code=channel, carparks=product.carpark_id).exists():
        raise ValidationError({"channel": f'"{WEB}" or the code of an agent that sells {product.carpark.code}.'})
    capacity = product.capacity(product.carpark.capacity)
    if spaces is not None and not 0 <= spaces <= capacity:
        raise ValidationError({"spaces": f"0 to {capacity} (the spaces of {product.code}), or empty for no share."})
    with transaction.atomic():
        found = ChannelAllocation.objects.select_for_update().filter(product=product, channel=channel).first()
        before = found.spaces if found else None
        if spaces is None:
            ChannelAllocation.objects.filter(product=product, channel=channel).delete()
        else:
            ChannelAllocation.objects.update_or_create(product=product, channel=channel, defaults={"spaces": spaces})
        audit_log_record(
            action="products.channel_allocation_set",
            actor=actor,
            obj=product,
            carpark=product.carpark,
            data={"product": product.code, "channel": channel, "before": before, "after": spaces},
        )
    forget_catalogue(product.carpark_id)


def promo_codes_of(*, carpark: CarPark):
    """The promo codes a car park's staff may edit: those of its products, and those of a brand that sells it
    (a code for every brand and product belongs to the whole business: the admin's)."""
    products = Product.objects.filter(carpark=carpark)
    brands = Brand.objects.filter(carparks=carpark)
    return PromoCode.objects.filter(product__in=products) | PromoCode.objects.filter(
        product__isnull=True, brand__in=brands
    )


def _promo_data(promo: PromoCode) -> dict:
    fields = ["code", "kind", "value", "book_from", "book_until", "stay_from", "stay_until", "min_days", "max_uses"]
    data = {f: (str(v) if v is not None else None) for f in fields for v in [getattr(promo, f)]}
    return {
        **data,
        "brand": promo.brand.code if promo.brand else "",
        "product": promo.product.code if promo.product else "",
        "active": promo.active,
    }


def promo_code_save(
    *,
    carpark: CarPark,
    code: str,
    kind: str,
    value: Decimal,
    brand: Brand | None = None,
    product: Product | None = None,
    book_from: date | None = None,
    book_until: date | None = None,
    stay_from: date | None = None,
    stay_until: date | None = None,
    min_days: int = 1,
    max_uses: int | None = None,
    active: bool = True,
    promo: PromoCode | None = None,
    actor=None,
) -> PromoCode:
    """Add a promo code, or change `promo` (one of `promo_codes_of(carpark)`). Uses counted so far stay."""
    errors = {}
    if brand is None and product is None:
        errors["brand"] = "Give a brand or a product (a code for everything is set in the admin)."
    if product is not None and product.carpark_id != carpark.pk:
        errors["product"] = f"Not a product of {carpark.code}."
    if brand is not None and not brand.carparks.filter(pk=carpark.pk).exists():
        errors["brand"] = f"{brand.name} does not sell {carpark.code}."
    if kind not in PromoCode.Kind.values:
        errors["kind"] = f"One of {', '.join(PromoCode.Kind.values)}."
    elif kind == PromoCode.Kind.PERCENT and not 0 < value <= 100:
        errors["value"] = "A percentage above 0, at most 100."
    elif value <= 0:
        errors["value"] = "An amount above 0."
    if book_from and book_until and book_until < book_from:
        errors["book_until"] = "On or after the first day of booking."
    if stay_from and stay_until and stay_until < stay_from:
        errors["stay_until"] = "On or after the first day of stay."
    if min_days < 1:
        errors["min_days"] = "At least 1."
    code = code.strip().upper()
    if not code or not code.replace("-", "").isalnum():
        errors["code"] = "Letters, digits and dashes."
    with transaction.atomic():
        if promo is not None:
            promo = PromoCode.objects.select_for_update().get(pk=promo.pk)
            if not promo_codes_of(carpark=carpark).filter(pk=promo.pk).exists():
                raise ValidationError("That promo code is not this car park's to edit.")
        if max_uses is not None and promo is not None and max_uses < promo.uses:
            errors["max_uses"] = f"It has been used {promo.uses} times already."
        if PromoCode.objects.filter(code=code).exclude(pk=promo.pk if promo else None).exists():
            errors["code"] = f"{code} is already a promo code."
        if errors:
            raise ValidationError(errors)
        before = _promo_data(promo) if promo else None
        promo = promo or PromoCode()
        promo.code, promo.kind, promo.value, promo.brand, promo.product = code, kind, value, brand, product
        promo.book_from, promo.book_until, promo.stay_from, promo.stay_until = (
            book_from,
            book_until,
            stay_from,
            stay_until,
        )
        promo.min_days, promo.max_uses, promo.active = min_days, max_uses, active
        promo.save()
        audit_log_record(
            action="products.promo_code_save",
            actor=actor,
            obj=promo,
            carpark=carpark,
            data={"before": before, "after": _promo_data(promo)},
        )
    return promo
