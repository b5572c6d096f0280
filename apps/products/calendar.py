"""Price calendar writes: ranges (refused when they overlap another of the same product, brand and channel, naming
it), CSV import and export of a car park's whole calendar, and stop-sell switches.

CSV columns: product, brand, channel, starts, ends, daily_rate, minimum_charge, bands (brand: a brand's code or
empty for all; channel: "web", an agent's code or empty; dates ISO; bands "4:10.00 8:8.00"). An import replaces the
car park's ranges in one transaction, or changes nothing and says which lines are wrong. Python's csv module reads
it: the rows are flat, and every row must pass the same checks as a range made on the page.
"""

import csv
import io
from collections import defaultdict
from datetime import date
from decimal import Decimal, InvalidOperation
from itertools import pairwise

from django.db import transaction

from apps.agents.models import Agent
from apps.carparks.models import Brand, CarPark
from apps.core.services import audit_log_record
from apps.products import signals
from apps.products.errors import CalendarConflict
from apps.products.models import WEB, PriceSeason, Product, StopSell
from apps.products.pricing import parse_bands
from apps.products.selectors import forget_catalogue

COLUMNS = ["product", "brand", "channel", "starts", "ends", "daily_rate", "minimum_charge", "bands"]


def _describe(season: PriceSeason, brands: dict[int, str]) -> str:
    who = " ".join(filter(None, [brands.get(season.brand_id, ""), season.channel])) or "all"
    return f"{season.product.code} {who} {season.starts}..{season.ends}"


def _check_overlaps(seasons: list[PriceSeason]) -> None:
    by_key: dict[tuple, list[PriceSeason]] = defaultdict(list)
    for s in seasons:
        by_key[(s.product_id, s.brand_id, s.channel)].append(s)
    brands = dict(Brand.objects.values_list("pk", "code"))
    for ranges in by_key.values():
        ranges.sort(key=lambda s: s.starts)
        for before, after in pairwise(ranges):
            if after.starts <= before.ends:
                raise CalendarConflict(f"{_describe(after, brands)} overlaps {_describe(before, brands)}")


def _check_channel(channel: str) -> str:
    channel = channel.strip()
    if channel and channel != WEB and not Agent.objects.filter(code=channel).exists():
        raise ValueError(f'channel {channel!r} is neither "web" nor an agent\'s code')
    return channel


def price_season_create(
    *,
    product: Product,
    starts: date,
    ends: date,
    daily_rate: Decimal,
    brand: Brand | None = None,
    channel: str = "",
    minimum_charge: Decimal = Decimal("0"),
    bands: str = "",
    actor=None,
) -> PriceSeason:
    """Add a range to a product's calendar; CalendarConflict naming the range it overlaps, ValueError if bad.
    Audited (`products.price_season_create`)."""
    _check_range(starts=starts, ends=ends, daily_rate=daily_rate, minimum_charge=minimum_charge, bands=bands)
    season = PriceSeason(
        product=product,
        brand=brand,
        channel=_check_channel(channel),
        starts=starts,
        ends=ends,
        daily_rate=daily_rate,
        minimum_charge=minimum_charge,
        bands=bands.strip(),
    )
    with transaction.atomic():
        Product.objects.select_for_update().get(pk=product.pk)  # one writer per product's calendar at a time
        same = PriceSeason.objects.filter(product=product, brand=brand, channel=season.channel).select_related(
            "product"
        )
        _check_overlaps([*same, season])
        season.save()
        audit_log_record(
            action="products.price_season_create",
            actor=actor,
            obj=season,
            carpark=product.carpark,
            data={"after": _season_data(season)},
        )
    forget_catalogue(product.carpark_id)
    return season


def price_season_delete(*, season: PriceSeason, actor=None) -> None:
    """Remove a range (its days cost what the next most specific range, or the tariff, says). Audited."""
    with transaction.atomic():
        audit_log_record(
            action="products.price_season_delete",
            actor=actor,
            obj=season,
            carpark=season.product.carpark,
            data={"before": _season_data(season)},
        )
        season.delete()
    forget_catalogue(season.product.carpark_id)


def price_season_update(
    *,
    season: PriceSeason,
    starts: date,
    ends: date,
    daily_rate: Decimal,
    brand: Brand | None = None,
    channel: str = "",
    minimum_charge: Decimal = Decimal("0"),
    bands: str = "",
    actor=None,
) -> PriceSeason:
    """Change a range (its product stays): the same checks as price_season_create, the overlap looked for among
    the product's other ranges. Audited (`products.price_season_update`, the range before and after)."""
    _check_range(starts=starts, ends=ends, daily_rate=daily_rate, minimum_charge=minimum_charge, bands=bands)
    before = _season_data(season)
    with transaction.atomic():
        Product.objects.select_for_update().get(pk=season.product_id)
        season.brand, season.channel, season.starts, season.ends = brand, _check_channel(channel), starts, ends
        season.daily_rate, season.minimum_charge, season.bands = daily_rate, minimum_charge, bands.strip()
        same = PriceSeason.objects.filter(product_id=season.product_id, brand=brand, channel=season.channel)
        _check_overlaps([*same.exclude(pk=season.pk).select_related("product"), season])
        season.save()
        audit_log_record(
            action="products.price_season_update",
            actor=actor,
            obj=season,
            carpark=season.product.carpark,
            data={"before": before, "after": _season_data(season)},
        )
    forget_catalogue(season.product.carpark_id)
    return season


def _check_range(*, starts: date, ends: date, daily_rate: Decimal, minimum_charge: Decimal, bands: str) -> None:
    """A range's own values, as created or changed (ValueError naming what is wrong)."""
    if ends < starts:
        raise ValueError("a range ends on or after its first day")
    if daily_rate < 0 or minimum_charge < 0:
        raise ValueError("amounts are 0 or more")
    parse_bands(bands)


def _season_data(season: PriceSeason) -> dict:
    return {
        "product": season.product.code,
        "brand": season.brand.code if season.brand else "",
        "channel": season.channel,
        "starts": season.starts.isoformat(),
        "ends": season.ends.isoformat(),
        "daily_rate": f"{season.daily_rate:.2f}",
        "minimum_charge": f"{Decimal(season.minimum_charge):.2f}",
        "bands": season.bands,
    }


def _row_to_season(row: dict, products: dict[str, Product], brands: dict[str, Brand], agents: set[str]):
    code = (row.get("product") or "").strip().upper()
    if code not in products:
        raise ValueError(f"unknown product {code!r} (one of {', '.join(sorted(products))})")
    brand_code = (row.get("brand") or "").strip()
    if brand_code and brand_code not in brands:
        raise ValueError(f"unknown brand {brand_code!r}")
    channel = (row.get("channel") or "").strip()
    if channel and channel != WEB and channel not in agents:
        raise ValueError(f'channel {channel!r} is neither "web" nor an agent\'s code')
    try:
        starts, ends = date.fromisoformat(row["starts"].strip()), date.fromisoformat(row["ends"].strip())
        rate = Decimal(row["daily_rate"].strip())
        minimum = Decimal((row.get("minimum_charge") or "0").strip() or "0")
    except (KeyError, AttributeError, ValueError, InvalidOperation) as exc:
        raise ValueError(f"bad date or amount ({exc})") from None
    if ends < starts or rate < 0 or minimum < 0 or not rate.is_finite():
        raise ValueError("the range must end on or after its start, with amounts of 0 or more")
    bands = (row.get("bands") or "").strip()
    parse_bands(bands)
    return PriceSeason(
        product=products[code],
        brand=brands.get(brand_code),
        channel=channel,
        starts=starts,
        ends=ends,
        daily_rate=rate,
        minimum_charge=minimum,
        bands=bands,
    )


def calendar_import(*, carpark: CarPark, text: str) -> int:
    """Replace the car park's price ranges with the CSV's; returns how many. ValueError naming the bad lines,
    CalendarConflict naming two overlapping ranges; nothing changes then."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = set(COLUMNS[:6]) - set(reader.fieldnames or [])
    if missing:
        raise ValueError(f"the CSV lacks the columns {', '.join(sorted(missing))} (expected: {', '.join(COLUMNS)})")
    products = {p.code.upper(): p for p in Product.objects.filter(carpark=carpark)}
    brands = {b.code: b for b in Brand.objects.all()}
    agents = set(Agent.objects.values_list("code", flat=True))
    seasons, problems = [], []
    for line, row in enumerate(reader, start=2):
        try:
            seasons.append(_row_to_season(row, products, brands, agents))
        except ValueError as exc:
            problems.append(f"line {line}: {exc}")
    if problems:
        raise ValueError("; ".join(problems[:10]) + (f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""))
    _check_overlaps(seasons)
    with transaction.atomic():
        list(Product.objects.select_for_update().filter(carpark=carpark).order_by("pk"))
        PriceSeason.objects.filter(product__carpark=carpark).delete()
        PriceSeason.objects.bulk_create(seasons, batch_size=1000)
    forget_catalogue(carpark.pk)
    return len(seasons)


def calendar_export(*, carpark: CarPark) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    rows = PriceSeason.objects.filter(product__carpark=carpark).select_related("product", "brand")
    for s in rows.order_by("product__position", "product__code", "brand__code", "channel", "starts"):
        writer.writerow(
            [
                s.product.code,
                s.brand.code if s.brand else "",
                s.channel,
                s.starts.isoformat(),
                s.ends.isoformat(),
                f"{s.daily_rate:.2f}",
                f"{s.minimum_charge:.2f}",
                s.bands,
            ]
        )
    return out.getvalue()


def stop_sell_set(*, product: Product, day: date, channel: str, stopped: bool) -> None:
    """Switch sale of the product on a day off (`stopped`) or on again, for one channel or ("") all."""
    channel = _check_channel(channel)
    with transaction.atomic():
        if stopped:
            changed = StopSell.objects.get_or_create(product=product, date=day, channel=channel)[1]
        else:
            changed = StopSell.objects.filter(product=product, date=day, channel=channel).delete()[0] > 0
        if changed:
            agent_id = Agent.objects.filter(code=channel).values_list("pk", flat=True).first() if channel else None
            data = {
                "carpark": product.carpark.code,
                "date": day.isoformat(),
                "product": product.code,
                "channel": channel or "all",
                "stopped": stopped,
            }
            signals.allocation_stop_sell.send(sender=StopSell, agent_id=agent_id, data=data)
