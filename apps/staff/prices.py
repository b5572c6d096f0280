"""The price calendar editor for supervisors (a page, not only the admin): a car park's products with their
calendar ranges, adding a range (overlaps refused, naming the other), a stay's price preview with its breakdown,
CSV export and import of the whole calendar, and stop-sell switches per product, day and channel.

Edges only: the writes are apps.products.calendar's services, the reads its selectors and pricing function.
"""

from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from apps.agents.models import Agent
from apps.bookings.selectors import tariff_rule
from apps.carparks.models import Brand, CarPark
from apps.core.concurrency import run_sync
from apps.products import calendar
from apps.products import selectors as catalogue
from apps.products.errors import CalendarConflict
from apps.products.models import WEB, PriceSeason, Product, StopSell
from apps.staff import selectors

PRICE_ROLES = ("supervisor",)
STOP_SELL_DAYS = 14


def _carpark_for(user_id: int, code: str) -> CarPark:
    allowed = selectors.carpark_ids_for_user(user_id=user_id, roles=PRICE_ROLES)
    carpark = CarPark.objects.filter(code=code.upper(), pk__in=allowed).first()
    if carpark is None:
        raise Http404("No such car park")
    return carpark


def _day(text: str | None, default: date) -> date:
    try:
        return date.fromisoformat(text) if text else default
    except ValueError:
        return default


def _preview(carpark: CarPark, data) -> dict | None:
    """A stay's price as the pricing function gives it: product, fare, first day, days, brand and channel."""
    if not data.get("preview_product"):
        return None
    info = next((i for i in catalogue.catalogue(carpark=carpark)[0] if i.product.code == data["preview_product"]), None)
    if info is None:
        return {"problem": "Choose a product."}
    fare = info.fare(data.get("preview_fare", "")) or (info.fares[0] if info.fares else None)
    first = _day(data.get("preview_from"), timezone.localdate(timezone=carpark.tz))
    days = max(1, min(92, int(data.get("preview_days") or 1) if str(data.get("preview_days", "1")).isdigit() else 1))
    brand = Brand.objects.filter(code=data.get("preview_brand", "")).first()
    breakdown = catalogue.price(
        info=info,
        fare=fare,
        carpark=carpark,
        brand=brand,
        channel=data.get("preview_channel") or WEB,
        dates=[first + timedelta(days=n) for n in range(days)],
        at=timezone.now(),
        tariff=tariff_rule(carpark=carpark, brand=brand),
    )
    if breakdown is None:
        return {"problem": "No price: some day has neither a calendar range nor a tariff."}
    return {"shown": breakdown.as_dict(), "fare": fare.code if fare else ""}


def _page_data(carpark: CarPark, data) -> dict:
    products = list(Product.objects.filter(carpark=carpark).prefetch_related("fares"))
    seasons = PriceSeason.objects.filter(product__carpark=carpark).select_related("product", "brand")
    start = _day(data.get("from"), timezone.localdate(timezone=carpark.tz))
    days = [start + timedelta(days=n) for n in range(STOP_SELL_DAYS)]
    channels = ["", WEB, *Agent.objects.filter(carparks=carpark).order_by("code").values_list("code", flat=True)]
    stopped = set(
        StopSell.objects.filter(product__carpark=carpark, date__in=days).values_list("product_id", "date", "channel")
    )
    grid = [(p, [(c, [(d, (p.pk, d, c) in stopped) for d in days]) for c in channels]) for p in products]
    return {
        "carpark": carpark,
        "products": products,
        "seasons": list(seasons.order_by("product__position", "product__code", "brand__code", "channel", "starts")),
        "brands": list(carpark.brands.all()),
        "channels": channels,
        "days": days,
        "grid": grid,
        "preview": _preview(carpark, data),
        "data": data,
    }


def _post(carpark: CarPark, data, files, user) -> str:
    """One write; returns the message to show (an error's words, or what was done)."""
    action = data.get("action")
    try:
        if action == "add_range":
            product = Product.objects.get(carpark=carpark, code=data.get("product", ""))
            calendar.price_season_create(
                product=product,
                brand=Brand.objects.filter(code=data.get("brand", "")).first(),
                channel=data.get("channel", ""),
                starts=date.fromisoformat(data.get("starts", "")),
                ends=date.fromisoformat(data.get("ends", "")),
                daily_rate=Decimal(data.get("daily_rate", "")),
                minimum_charge=Decimal(data.get("minimum_charge") or "0"),
                bands=data.get("bands", ""),
                actor=user,
            )
            return "Range added."
        if action == "delete_range":
            season = PriceSeason.objects.select_related("product__carpark").filter(
                product__carpark=carpark, pk=data.get("season")
            )
            for found in season:
                calendar.price_season_delete(season=found, actor=user)
            return "Range removed."
        if action == "import":
            upload = files.get("csv")
            if upload is None:
                return "Choose a CSV file to import."
            count = calendar.calendar_import(carpark=carpark, text=upload.read().decode("utf-8-sig"))
            return f"Imported {count} ranges (the calendar was replaced)."
        if action == "stop_sell":
            product = Product.objects.get(carpark=carpark, pk=data.get("product_id"))
            calendar.stop_sell_set(
                product=product,
                day=date.fromisoformat(data.get("day", "")),
                channel=data.get("channel", ""),
                stopped=data.get("stopped") == "1",
            )
            return "Stop-sell updated."
    except (CalendarConflict, ValueError, InvalidOperation, Product.DoesNotExist, UnicodeDecodeError) as exc:
        return f"Refused: {exc}"
    return "Unknown action."


@login_required
async def prices(request, code: str):
    user = await request.auser()
    carpark = await run_sync(_carpark_for, user.pk, code)
    if request.method == "POST":
        message = await run_sync(_post, carpark, request.POST, request.FILES, user)
        url = reverse("dashboard-prices", args=[carpark.code])
        return HttpResponseRedirect(f"{url}?{urlencode({'message': message})}")  # after a POST, a page to reload
    context = await run_sync(_page_data, carpark, request.GET)
    context["user"] = user
    with timezone.override(carpark.tz):
        return render(request, "staff/prices.html", context)


@login_required
async def prices_csv(request, code: str):
    user = await request.auser()
    carpark = await run_sync(_carpark_for, user.pk, code)
    text = await run_sync(calendar.calendar_export, carpark=carpark)
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{carpark.code}-calendar.csv"'
    return response
