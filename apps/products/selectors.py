"""Product reads: what a seller may sell at a car park, and each product's fares priced for a stay.

A car park's catalogue (products, fares, allocations, calendars) is read in a few queries and kept per process for
CATALOGUE_CACHE_S (apps.core.recent), like the tariffs: every quote prices every product, the catalogue changes
seldom. A calendar edited by staff applies to new quotes and bookings within that time.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from apps.agents.models import Agent
from apps.carparks.models import Brand, CarPark
from apps.core.recent import Recent
from apps.products import holds
from apps.products.errors import UnknownChoice
from apps.products.fares import FareTerms
from apps.products.models import WEB, Extra, Fare, Product, PromoCode
from apps.products.pricing import (
    Breakdown,
    Calendar,
    ExtraItem,
    FarePrice,
    Promo,
    Rule,
    Season,
    Tariff,
    parse_bands,
    price_fares,
)

CATALOGUE_CACHE_S = 5.0


@dataclass(frozen=True)
class ProductInfo:
    product: Product
    fares: tuple[Fare, ...]
    allocations: dict[str, int]
    seasons: tuple[Season, ...]  # sorted by `starts`
    span: int  # the longest range's days (pricing.Calendar.span)
    rules: tuple[Rule, ...]
    texts: dict[int, tuple[str, str]] = field(default_factory=dict)  # brand id -> (name, description)

    def name(self, brand: Brand | None) -> str:
        return self.texts.get(brand.pk if brand else 0, (self.product.name,))[0]

    def description(self, brand: Brand | None) -> str:
        return self.texts.get(brand.pk if brand else 0, ("", self.product.description))[1]

    def fare(self, code: str) -> Fare | None:
        return next((f for f in self.fares if f.code == code), None)


_catalogues: Recent[int, tuple[list[ProductInfo], dict[str, Extra]]] = Recent(CATALOGUE_CACHE_S)


def catalogue(*, carpark: CarPark) -> tuple[list[ProductInfo], dict[str, Extra]]:
    """The car park's products (in their order) and extras by code."""
    return _catalogues.get(carpark.pk, lambda: _load_catalogue(carpark.pk))


def _load_catalogue(carpark_id: int) -> tuple[list[ProductInfo], dict[str, Extra]]:
    products = list(
        Product.objects.filter(carpark_id=carpark_id).prefetch_related(
            "fares", "allocations", "seasons", "rules", "texts"
        )
    )
    infos = []
    for p in products:
        seasons = sorted(
            (Season(s.starts, s.ends, s.daily_rate, s.minimum_charge, parse_bands(s.bands), s.brand_id, s.channel)
             for s in p.seasons.all()),
            key=lambda s: s.starts,
        )  # fmt: skip
        infos.append(
            ProductInfo(
                product=p,
                fares=tuple(p.fares.all()),
                allocations={a.channel: a.spaces for a in p.allocations.all()},
                seasons=tuple(seasons),
                span=max(((s.ends - s.starts).days for s in seasons), default=0),
                rules=tuple(Rule(r.kind, r.threshold, r.percent) for r in p.rules.all()),
                texts={t.brand_id: (t.name, t.description) for t in p.texts.all()},
            )
        )
    return infos, {x.code: x for x in Extra.objects.filter(carpark_id=carpark_id)}


def forget_catalogue(carpark_id: int) -> None:
    """After a change made in this process (staff's editor, tests): the next read loads it again."""
    _catalogues.forget(carpark_id)


def channel_of(agent: Agent | None) -> str:
    return agent.code if agent is not None else WEB


def sellable(*, carpark: CarPark, agent: Agent | None) -> list[ProductInfo]:
    """What the seller may sell here: an agent its product codes, or the car park's default product when none of
    them is sold here (a contracted car park always sells the agent something)."""
    infos, _ = catalogue(carpark=carpark)
    offered = [i for i in infos if agent is None or agent.sells(i.product.code)]
    return offered or [i for i in infos if i.product.is_default]


def product_for_sale(*, carpark: CarPark, agent: Agent | None, code: str | None) -> ProductInfo:
    """The product a booking names (by code, any case), else the agent's default, else the car park's."""
    offered = sellable(carpark=carpark, agent=agent)
    if code:
        found = next((i for i in offered if i.product.code.upper() == code.strip().upper()), None)
        if found is None:
            raise UnknownChoice("product", code, [i.product.code for i in offered])
        return found
    wanted = agent.default_product if agent is not None else ""
    found = next((i for i in offered if wanted and i.product.code == wanted), None)
    found = found or next((i for i in offered if i.product.is_default), None) or (offered[0] if offered else None)
    if found is None:
        raise UnknownChoice("product", "", [])
    return found


def fare_for_sale(*, info: ProductInfo, agent: Agent | None, code: str | None) -> Fare | None:
    """The fare a booking names, else the agent's default when the product has it, else the product's first."""
    if code:
        fare = info.fare(code.strip().lower())
        if fare is None:
            raise UnknownChoice("fare", code, [f.code for f in info.fares])
        return fare
    wanted = agent.default_fare if agent is not None else ""
    return (wanted and info.fare(wanted)) or (info.fares[0] if info.fares else None)


def extras_for_sale(*, carpark: CarPark, wanted: list[dict]) -> list[tuple[Extra, int]]:
    """[{"code", "quantity"}] -> [(Extra, quantity)]; unknown codes raise UnknownChoice("extras", ...)."""
    _, extras = catalogue(carpark=carpark)
    chosen: dict[str, int] = defaultdict(int)
    for item in wanted:
        code = str(item.get("code", "")).strip().upper()
        if code not in extras:
            raise UnknownChoice("extras", item.get("code", ""), sorted(extras))
        chosen[code] += int(item.get("quantity", 1))
    return [(extras[c], q) for c, q in chosen.items() if q > 0]


def sale_days(
    *, info: ProductInfo, carpark: CarPark, channel: str, dates: list[date]
) -> tuple[list[date], dict[date, int]]:
    """A new sale's days stopped from sale for its channel, and their occupancy for its price, in one read."""
    pk = info.product.pk
    found = holds.days_held(product_ids=[pk], channel=channel, dates=dates)
    return sorted(found.stopped[pk]), holds.percent_held(found.held[(pk, "")], info.product.capacity(carpark.capacity))


def price(
    *,
    info: ProductInfo,
    fare: Fare | None,
    carpark: CarPark,
    brand: Brand | None,
    channel: str,
    dates: list[date],
    at: datetime,
    tariff: Tariff | None,
    extras: list[tuple[Extra, int]] = (),
    promo: PromoCode | None = None,
    occupancy: dict[date, int] | None = None,
) -> Breakdown | None:
    """The pricing function fed from the database: the calendar, the days' occupancy, the booking's local date."""
    return fare_prices(
        info=info,
        fares=[fare],
        carpark=carpark,
        brand=brand,
        channel=channel,
        dates=dates,
        at=at,
        tariff=tariff,
        extras=extras,
        promo=promo,
        occupancy=occupancy,
    )[0]


def fare_prices(
    *,
    info: ProductInfo,
    fares: list[Fare | None],
    carpark: CarPark,
    brand: Brand | None,
    channel: str,
    dates: list[date],
    at: datetime,
    tariff: Tariff | None,
    extras: list[tuple[Extra, int]] = (),
    promo: PromoCode | None = None,
    occupancy: dict[date, int] | None = None,
) -> list[Breakdown | None]:
    """`price` for each of the product's `fares` (None: no fare), the days priced once (pricing.price_fares)."""
    spaces = info.product.capacity(carpark.capacity)
    calendar = Calendar(info.seasons, info.rules, tariff, span=info.span)
    return price_fares(
        calendar,
        [FarePrice(fare.code, fare.price_percent) if fare else FarePrice("") for fare in fares],
        dates=dates,
        brand_id=brand.pk if brand else None,
        channel=channel,
        booked_on=at.astimezone(carpark.tz).date(),
        occupancy=_occupancy(info, spaces, dates) if occupancy is None else occupancy,
        extras=tuple(ExtraItem(x.code, x.name, x.price, x.per == Extra.Per.DAY, q) for x, q in extras),
        promo=None if promo is None else Promo(promo.code, promo.kind == PromoCode.Kind.PERCENT, promo.value),
    )


def _occupancy(info: ProductInfo, spaces: int, dates: list[date]) -> dict[date, int]:
    """The days' occupancy, read only when a rule looks at it."""
    if not any(r.kind == "occupancy" for r in info.rules):
        return {}
    return holds.occupancy(product_id=info.product.pk, spaces=spaces, dates=dates)


@dataclass(frozen=True)
class FareQuote:
    code: str
    name: str
    price: Decimal | None
    refundable: bool
    terms: str
    breakdown: Breakdown | None


@dataclass(frozen=True)
class ProductQuote:
    code: str
    name: str
    description: str
    spaces_left: int
    fares: list[FareQuote]


def product_quotes(
    *,
    carpark: CarPark,
    dates: list[date],
    at: datetime,
    tariff: Tariff | None,
    brand: Brand | None = None,
    agent: Agent | None = None,
    allowance: dict[date, int] | None = None,
) -> list[ProductQuote]:
    """Each product the seller may sell, with spaces left for its channel and each fare's price for the stay's
    local `dates` (no holds); `tariff`: the car park's for the brand (days no calendar range covers); `allowance`:
    the channel's accepted overbooking per date (holds.allowances), counted as the holds count it."""
    channel = channel_of(agent)
    infos = sellable(carpark=carpark, agent=agent)
    found = holds.days_held(product_ids=[i.product.pk for i in infos], channel=channel, dates=dates)  # one query
    days, stopped = found.held, found.stopped
    quotes = []
    for info in infos:
        pk, spaces = info.product.pk, info.product.capacity(carpark.capacity)
        share = info.allocations.get(channel)
        extra = allowance or {}
        left = min(spaces + extra.get(d, 0) - days[(pk, "")].get(d, 0) for d in dates) if dates else spaces
        if share is not None and dates:
            left = min(left, min(share + extra.get(d, 0) - days[(pk, channel)].get(d, 0) for d in dates))
        occupancy = holds.percent_held(days[(pk, "")], spaces)
        fares = []
        sold = list(info.fares or (None,))
        breakdowns = fare_prices(
            info=info,
            fares=sold,
            carpark=carpark,
            brand=brand,
            channel=channel,
            dates=dates,
            at=at,
            tariff=tariff,
            occupancy=occupancy,
        )
        for fare, breakdown in zip(sold, breakdowns, strict=True):
            terms = FareTerms.of(fare)
            fares.append(
                FareQuote(
                    fare.code if fare else "",
                    fare.name if fare else "",
                    breakdown.total if breakdown else None,
                    terms.refundable,
                    terms.describe(),
                    breakdown,
                )
            )
        left = 0 if stopped.get(pk) else max(0, left)
        quotes.append(ProductQuote(info.product.code, info.name(brand), info.description(brand), left, fares))
    return quotes
