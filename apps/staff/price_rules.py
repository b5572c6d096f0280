"""The price rules editor for supervisors, linked from the price calendar (/dashboard/prices/<car park>/rules/):
a range's dates and amounts, weekday / lead-time / occupancy rules, channel allocations and promo codes, each a
form whose refusals are shown beside its fields (HTTP 400, the form as it was sent).

Edges only: the writes are apps.products.calendar's and apps.products.editing's services (audited there).
"""

from decimal import Decimal
from urllib.parse import urlencode

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from apps.agents.models import Agent
from apps.carparks.models import CarPark
from apps.core.concurrency import run_sync
from apps.products import calendar, editing
from apps.products.errors import CalendarConflict
from apps.products.models import WEB, ChannelAllocation, PriceRule, PriceSeason, Product, PromoCode
from apps.staff.prices import _carpark_for

MONEY = {"max_digits": 8, "decimal_places": 2, "min_value": Decimal("0")}
DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")  # what a date input shows


class _CarparkForm(forms.Form):
    def __init__(self, *args, carpark: CarPark, **kwargs):
        super().__init__(*args, **kwargs)
        self.carpark = carpark
        self.products = {p.code: p for p in Product.objects.filter(carpark=carpark).order_by("position", "code")}
        self.brands = {b.code: b for b in carpark.brands.order_by("code")}
        agents = Agent.objects.filter(carparks=carpark).order_by("code").values_list("code", flat=True)
        self.channels = [WEB, *agents]
        for name, field in self.fields.items():
            if name == "product":
                field.choices = [*([("", "-")] if not field.required else []), *((c, c) for c in self.products)]
            elif name == "brand":
                field.choices = [("", "all brands"), *((c, b.name) for c, b in self.brands.items())]
            elif name == "channel":
                field.choices = [
                    *([("", "all channels")] if not field.required else []),
                    *((c, c) for c in self.channels),
                ]


class SeasonForm(_CarparkForm):
    season = forms.IntegerField(widget=forms.HiddenInput)
    brand = forms.ChoiceField(required=False)
    channel = forms.ChoiceField(required=False)
    starts = forms.DateField(label="From", widget=DATE)
    ends = forms.DateField(label="To (inclusive)", widget=DATE)
    daily_rate = forms.DecimalField(**MONEY)
    minimum_charge = forms.DecimalField(required=False, **MONEY)
    bands = forms.CharField(required=False, max_length=200, help_text='"4:10.00 8:8.00": from day 4, 10.00 a day')


class RuleForm(_CarparkForm):
    rule = forms.IntegerField(required=False, widget=forms.HiddenInput)
    product = forms.ChoiceField()
    kind = forms.ChoiceField(choices=PriceRule.Kind.choices)
    threshold = forms.IntegerField(min_value=0, max_value=1000, help_text="weekday 1-7, days ahead, or % sold")
    percent = forms.DecimalField(max_digits=5, decimal_places=2, help_text="+15 = 15% dearer, -10 = 10% cheaper")


class AllocationForm(_CarparkForm):
    product = forms.ChoiceField()
    channel = forms.ChoiceField()
    spaces = forms.IntegerField(required=False, min_value=0, help_text="Per day; empty: no share of its own")


class PromoForm(_CarparkForm):
    promo = forms.IntegerField(required=False, widget=forms.HiddenInput)
    code = forms.CharField(max_length=32)
    kind = forms.ChoiceField(choices=PromoCode.Kind.choices)
    value = forms.DecimalField(**MONEY, help_text="percent, or an amount in the car park's currency")
    brand = forms.ChoiceField(required=False)
    product = forms.ChoiceField(required=False)
    book_from = forms.DateField(required=False, widget=DATE)
    book_until = forms.DateField(required=False, widget=DATE)
    stay_from = forms.DateField(required=False, widget=DATE, label="Arrival from")
    stay_until = forms.DateField(required=False, widget=DATE, label="Departure by")
    min_days = forms.IntegerField(min_value=1, initial=1, label="Minimum days")
    max_uses = forms.IntegerField(required=False, min_value=1, label="Maximum uses")
    active = forms.BooleanField(required=False, initial=True)


FORMS = {"season": SeasonForm, "rule": RuleForm, "allocation": AllocationForm, "promo": PromoForm}


def _initial(carpark: CarPark, query) -> dict[str, dict]:
    """?season= / ?rule= / ?promo=: that item's values in its form, to edit."""
    initial: dict[str, dict] = {}
    season = PriceSeason.objects.filter(product__carpark=carpark, pk=_int(query.get("season"))).first()
    if season:
        initial["season"] = {
            "season": season.pk, "brand": season.brand.code if season.brand else "", "channel": season.channel,
            "starts": season.starts, "ends": season.ends, "daily_rate": season.daily_rate,
            "minimum_charge": season.minimum_charge, "bands": season.bands,
        }  # fmt: skip
    rule = PriceRule.objects.filter(product__carpark=carpark, pk=_int(query.get("rule"))).first()
    if rule:
        initial["rule"] = {
            "rule": rule.pk, "product": rule.product.code, "kind": rule.kind, "threshold": rule.threshold,
            "percent": rule.percent,
        }  # fmt: skip
    promo = editing.promo_codes_of(carpark=carpark).filter(pk=_int(query.get("promo"))).first()
    if promo:
        fields = ["code", "kind", "value", "book_from", "book_until", "stay_from", "stay_until", "min_days"]
        initial["promo"] = {f: getattr(promo, f) for f in [*fields, "max_uses", "active"]} | {
            "promo": promo.pk,
            "brand": promo.brand.code if promo.brand else "",
            "product": promo.product.code if promo.product else "",
        }
    return initial


def _int(text) -> int | None:
    return int(text) if str(text or "").isdigit() else None


def _context(carpark: CarPark, query, bound: dict) -> dict:
    initial = _initial(carpark, query)
    made = {
        name: bound.get(name) or form_class(carpark=carpark, initial=initial.get(name))
        for name, form_class in FORMS.items()
    }
    products = list(Product.objects.filter(carpark=carpark).order_by("position", "code"))
    shares = {(a.product_id, a.channel): a.spaces for a in ChannelAllocation.objects.filter(product__in=products)}
    channels = made["allocation"].channels
    return {
        "carpark": carpark,
        "forms": made,
        "editing_season": "season" in initial or "season" in bound,
        "seasons": list(
            PriceSeason.objects.filter(product__carpark=carpark)
            .select_related("product", "brand")
            .order_by("product__position", "product__code", "brand__code", "channel", "starts")
        ),
        "rules": list(PriceRule.objects.filter(product__carpark=carpark).select_related("product")),
        "channels": channels,
        "allocations": [(p, [shares.get((p.pk, c)) for c in channels]) for p in products],
        "promos": list(editing.promo_codes_of(carpark=carpark).select_related("brand", "product").order_by("code")),
        "message": query.get("message", ""),
    }


def _apply(form, action: str, user) -> str:
    """The valid form's write; returns what was done (ValidationError, CalendarConflict, ValueError: refused)."""
    data, carpark = form.cleaned_data, form.carpark
    if action == "season":
        season = PriceSeason.objects.select_related("product__carpark").get(product__carpark=carpark, pk=data["season"])
        calendar.price_season_update(
            season=season, brand=form.brands.get(data["brand"]), channel=data["channel"], starts=data["starts"],
            ends=data["ends"], daily_rate=data["daily_rate"], minimum_charge=data["minimum_charge"] or Decimal("0"),
            bands=data["bands"], actor=user,
        )  # fmt: skip
        return "Range changed."
    if action == "rule":
        rule = PriceRule.objects.filter(product__carpark=carpark, pk=data["rule"]).first() if data["rule"] else None
        editing.price_rule_save(
            product=form.products[data["product"]], kind=data["kind"], threshold=data["threshold"],
            percent=data["percent"], rule=rule, actor=user,
        )  # fmt: skip
        return "Rule changed." if rule else "Rule added."
    if action == "allocation":
        editing.channel_allocation_set(
            product=form.products[data["product"]], channel=data["channel"], spaces=data["spaces"], actor=user
        )
        return "Allocation changed."
    promo = editing.promo_codes_of(carpark=carpark).filter(pk=data["promo"]).first() if data["promo"] else None
    editing.promo_code_save(
        carpark=carpark, code=data["code"], kind=data["kind"], value=data["value"],
        brand=form.brands.get(data["brand"]), product=form.products.get(data["product"]),
        book_from=data["book_from"], book_until=data["book_until"], stay_from=data["stay_from"],
        stay_until=data["stay_until"], min_days=data["min_days"], max_uses=data["max_uses"], active=data["active"],
        promo=promo, actor=user,
    )  # fmt: skip
    return "Promo code changed." if promo else "Promo code added."


def _post(carpark: CarPark, data, user) -> tuple[str | None, dict]:
    """One write: (the message, {}) done, or (None, {form name: the form with its errors}) refused."""
    action = data.get("action", "")
    if action == "rule_delete":
        rule = PriceRule.objects.select_related("product__carpark").filter(
            product__carpark=carpark, pk=_int(data.get("rule"))
        )
        for found in rule:
            editing.price_rule_delete(rule=found, actor=user)
        return "Rule removed.", {}
    if action not in FORMS:
        return "Unknown action.", {}
    form = FORMS[action](data, carpark=carpark)
    if form.is_valid():
        try:
            return _apply(form, action, user), {}
        except ValidationError as exc:
            form.add_error(None, exc)
        except (CalendarConflict, ValueError, PriceSeason.DoesNotExist) as exc:
            form.add_error(None, str(exc))
    return None, {action: form}


@login_required
async def price_rules(request, code: str):
    user = await request.auser()
    carpark = await run_sync(_carpark_for, user.pk, code)
    bound: dict = {}
    if request.method == "POST":
        message, bound = await run_sync(_post, carpark, request.POST, user)
        if message is not None:
            url = reverse("dashboard-price-rules", args=[carpark.code])
            return HttpResponseRedirect(f"{url}?{urlencode({'message': message})}")
    context = await run_sync(_context, carpark, request.GET, bound)
    context["user"] = user
    with timezone.override(carpark.tz):
        return render(request, "staff/price_rules.html", context, status=400 if bound else 200)
