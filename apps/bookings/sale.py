"""What a booking sells (apps.products): its product, fare, extras and promo code, resolved and priced for the
seller, and the holds they take in the booking's transaction (after the car park's days, apps.bookings.capacity).

The seller's channel is the agent's code (API and email) or "web" (brands' websites and staff). Bookings that name
no product or fare (older API clients, email formats without a product) get the agent's defaults, else the car
park's default product and that product's first fare.
"""

from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from apps.agents.models import Agent
from apps.bookings import capacity
from apps.bookings.errors import BookingInvalid, ProductNoCapacity
from apps.bookings.models import Booking, BookingExtra
from apps.bookings.pricing import stay_dates
from apps.bookings.selectors import tariff_rule
from apps.carparks.models import Brand, CarPark
from apps.products import holds, promos
from apps.products import selectors as catalogue
from apps.products.errors import PromoRefused, UnknownChoice
from apps.products.models import Extra, Fare, PromoCode
from apps.products.pricing import Breakdown


@dataclass(frozen=True)
class Amendment:
    """What an amendment did to the price (the fee is part of the new price)."""

    previous_price: Decimal
    price: Decimal
    fee: Decimal

    @property
    def price_difference(self) -> Decimal:
        return self.price - self.previous_price

    def as_dict(self) -> dict:
        return {
            "previous_price": f"{self.previous_price:.2f}",
            "price": f"{self.price:.2f}",
            "price_difference": f"{self.price_difference:.2f}",
            "fee": f"{self.fee:.2f}",
        }


@dataclass(frozen=True)
class Sale:
    carpark: CarPark
    info: catalogue.ProductInfo
    fare: Fare | None
    extras: list[tuple[Extra, int]]
    promo: PromoCode | None
    channel: str
    breakdown: Breakdown | None
    stay: holds.ProductStay
    promo_is_new: bool = True

    @property
    def product(self):
        return self.info.product

    def extra_days(self) -> Counter:
        return Counter({(x.pk, d): q for x, q in self.extras for d in self.stay.dates})


def _invalid(exc: UnknownChoice | PromoRefused) -> BookingInvalid:
    if isinstance(exc, UnknownChoice):
        return BookingInvalid(str(exc), field=exc.field, allowed=exc.allowed)
    return BookingInvalid(str(exc), field=exc.field)


def sale_for(
    *,
    carpark: CarPark,
    brand: Brand | None,
    agent: Agent | None,
    arrival: datetime,
    departure: datetime,
    at: datetime,
    product: str | None = None,
    fare: str | None = None,
    extras: list[dict] | None = None,
    promo_code: str = "",
    kept_promo: PromoCode | None = None,
    new_sale: bool = True,
) -> Sale:
    """Resolve and price what is sold; BookingInvalid naming the field (and the allowed values) for an unknown
    product, fare or extra or a refused promo code; ProductNoCapacity for a day stopped from sale (new sales)."""
    try:
        info = catalogue.product_for_sale(carpark=carpark, agent=agent, code=product)
        chosen_fare = catalogue.fare_for_sale(info=info, agent=agent, code=fare)
        chosen_extras = catalogue.extras_for_sale(carpark=carpark, wanted=extras or [])
        promo = promos.promo_find(promo_code) if promo_code and promo_code.strip() else kept_promo
    except (UnknownChoice, PromoRefused) as exc:
        raise _invalid(exc) from None
    dates = stay_dates(arrival=arrival, departure=departure, tz=carpark.tz)
    channel = catalogue.channel_of(agent)
    if promo is not None and promo is not kept_promo:
        local = carpark.tz
        refusal = promos.promo_refusal(
            promo,
            brand_id=brand.pk if brand else None,
            product_id=info.product.pk,
            booked_on=at.astimezone(local).date(),
            arrival=arrival.astimezone(local).date(),
            departure=departure.astimezone(local).date(),
            days=len(dates),
        )
        if refusal:
            raise BookingInvalid(refusal, field="promo_code")
    occupancy = None  # read by the price when not here
    if new_sale:
        stopped, occupancy = catalogue.sale_days(info=info, carpark=carpark, channel=channel, dates=dates)
        if stopped:
            raise ProductNoCapacity(carpark, info.product, stopped, why="not on sale")
    breakdown = catalogue.price(
        info=info,
        fare=chosen_fare,
        carpark=carpark,
        brand=brand,
        channel=channel,
        dates=dates,
        at=at,
        extras=chosen_extras,
        promo=promo,
        tariff=tariff_rule(carpark=carpark, brand=brand),
        occupancy=occupancy,
    )
    stay = _product_stay(carpark, info, channel, dates)
    return Sale(
        carpark,
        info,
        chosen_fare,
        chosen_extras,
        promo,
        channel,
        breakdown,
        stay,
        promo is not None and promo is not kept_promo,
    )


def _product_stay(carpark: CarPark, info: catalogue.ProductInfo, channel: str, dates) -> holds.ProductStay:
    """What a sale holds of its product, with the channel's accepted overbooking allowance per day (the car park's
    days take the same allowance: services' `_stay`)."""
    return holds.ProductStay(
        info.product.pk,
        info.product.capacity(carpark.capacity),
        channel,
        info.allocations.get(channel),
        tuple(dates),
        holds.allowances(carpark_id=carpark.pk, channel=channel, dates=dates),
    )


def take(
    *, old: holds.ProductStay | None, new: Sale | None, allow_overbooking: bool, old_extras: Counter | None = None
) -> bool:
    """Move the product's and extras' holds from `old` to `new` (inside the booking's transaction) and count a new
    promo code's use; True when a day was taken although full (overbooking allowed: agents' emails)."""
    try:
        full = holds.move_product_holds(old=old, new=new.stay if new else None, allow_overbooking=allow_overbooking)
    except holds.ProductFull as exc:
        why = "full for your channel (its share is used up)" if exc.share else "full"
        raise ProductNoCapacity(new.carpark, new.product, exc.dates, why=why) from None
    new_extras = new.extra_days() if new else Counter()
    stock = {x.pk: x.stock_per_day for x, _ in (new.extras if new else [])}
    try:
        holds.move_extra_holds(
            old=old_extras or Counter(), new=new_extras, stock=stock, allow_overbooking=allow_overbooking
        )
    except holds.ExtraSoldOut as exc:
        extra = next(x for x, _ in new.extras if x.pk == exc.extra_id)
        days = ", ".join(d.strftime("%a %d %b %Y") for d in exc.dates)
        raise BookingInvalid(f"{extra.name} is sold out on {days}", field="extras") from None
    if new is not None and new.promo is not None and new.promo_is_new:
        try:
            promos.promo_use(promo=new.promo)
        except PromoRefused as exc:
            raise _invalid(exc) from None
    return bool(full)


def amend_fee(booking: Booking, new: Sale, *, moved: bool) -> Decimal:
    """The booking's fare's amend fee when its dates, car park or product change (changing fare or extras only is
    free: it is a new choice, priced as such)."""
    if booking.fare is None or not (moved or new.product.pk != booking.product_id):
        return Decimal("0")
    return booking.fare.amend_fee


def booked_extra_days(booking: Booking, dates) -> Counter:
    """What a booking's extras hold now (for moving them on an amendment or releasing them on a cancel)."""
    return Counter({(e.extra_id, d): e.quantity for e in booking.extras.all() for d in dates})


def record(booking: Booking, sale: Sale) -> None:
    """The sale's fields on the booking (not saved)."""
    booking.product, booking.fare, booking.promo = sale.product, sale.fare, sale.promo
    booking.price_breakdown = sale.breakdown.as_dict() if sale.breakdown else None


def record_extras(booking: Booking, sale: Sale, *, new: bool = False) -> list[BookingExtra]:
    """The sale's extras as the booking's rows (replacing any), at the prices of its breakdown."""
    if not new:
        BookingExtra.objects.filter(booking=booking).delete()
    lines = sale.breakdown.extras if sale.breakdown else [None] * len(sale.extras)
    return BookingExtra.objects.bulk_create(
        BookingExtra(booking=booking, extra=x, quantity=q, price=line.amount if line else x.price)
        for (x, q), line in zip(sale.extras, lines, strict=True)
    )


def release(booking: Booking) -> None:
    """Free what a live booking holds of its product's days and its extras' stock (a cancel, an expiry)."""
    dates = stay_dates(arrival=booking.arrival, departure=booking.departure, tz=booking.carpark.tz)
    take(old=held_stay(booking), new=None, allow_overbooking=True, old_extras=booked_extra_days(booking, dates))


def retake(booking: Booking) -> None:
    """Hold again what an expired booking held, its status live again (a payment came after the expiry):
    ProductNoCapacity or BookingInvalid (an extra sold out) when it is gone meanwhile."""
    carpark = booking.carpark
    infos, _extras = catalogue.catalogue(carpark=carpark)
    info = next(i for i in infos if i.product.pk == booking.product_id)
    channel = catalogue.channel_of(booking.agent)
    dates = stay_dates(arrival=booking.arrival, departure=booking.departure, tz=carpark.tz)
    stay = _product_stay(carpark, info, channel, dates)
    try:
        holds.move_product_holds(old=None, new=stay, allow_overbooking=False)
    except holds.ProductFull as exc:
        why = "full for your channel (its share is used up)" if exc.share else "full"
        raise ProductNoCapacity(booking.carpark, booking.product, exc.dates, why=why) from None
    extras = list(booking.extras.select_related("extra"))
    try:
        holds.move_extra_holds(
            old=Counter(),
            new=booked_extra_days(booking, dates),
            stock={e.extra_id: e.extra.stock_per_day for e in extras},
            allow_overbooking=False,
        )
    except holds.ExtraSoldOut as exc:
        raise BookingInvalid("an extra of this booking is sold out meanwhile", field="extras") from exc


def allowance(booking: Booking) -> dict:
    """The booking's channel's accepted overbooking per day of its stay (for holding its days again)."""
    dates = stay_dates(arrival=booking.arrival, departure=booking.departure, tz=booking.carpark.tz)
    return holds.allowances(carpark_id=booking.carpark_id, channel=catalogue.channel_of(booking.agent), dates=dates)


def held_stay(booking: Booking) -> holds.ProductStay | None:
    """The product days a booking holds now (to release or move them)."""
    if booking.product_id is None or not booking.holds_space:
        return None
    dates = stay_dates(arrival=booking.arrival, departure=booking.departure, tz=booking.carpark.tz)
    return holds.ProductStay(booking.product_id, 0, catalogue.channel_of(booking.agent), None, tuple(dates))


def quotes_for(
    *, carpark: CarPark, arrival: datetime, departure: datetime, at: datetime, brand: Brand | None, agent: Agent | None
) -> list[catalogue.ProductQuote]:
    """Each product the seller may sell for the stay: spaces left for it (never more than the car park's) and each
    fare's price with its breakdown (no holds: the booking checks again under locks)."""
    dates = stay_dates(arrival=arrival, departure=departure, tz=carpark.tz)
    allowance = holds.allowances(carpark_id=carpark.pk, channel=catalogue.channel_of(agent), dates=dates)
    quotes = catalogue.product_quotes(
        carpark=carpark,
        dates=dates,
        at=at,
        tariff=tariff_rule(carpark=carpark, brand=brand),
        brand=brand,
        agent=agent,
        allowance=allowance,
    )
    left = capacity.spaces_left(carpark_id=carpark.pk, capacity=carpark.capacity, dates=dates, allowance=allowance)
    return [replace(q, spaces_left=min(q.spaces_left, left)) for q in quotes]


def default_quote(quotes: list[catalogue.ProductQuote], *, carpark: CarPark, agent: Agent | None):
    """The quote and fare a booking naming neither would get (the API's top-level availability)."""
    try:
        info = catalogue.product_for_sale(carpark=carpark, agent=agent, code=None)
        fare = catalogue.fare_for_sale(info=info, agent=agent, code=None)
    except UnknownChoice:
        return None, None
    quote = next((q for q in quotes if q.code == info.product.code), None)
    if quote is None:
        return None, None
    return quote, next((f for f in quote.fares if fare is None or f.code == fare.code), None)


def availability_data(*, carpark: CarPark, arrival: datetime, departure: datetime, at: datetime, agent: Agent) -> dict:
    """The agents' API's availability (docs/operations.md 5): the agent's default product and fare at the top level,
    then each product it sells with its fares' prices and the spaces left for it."""
    quotes = quotes_for(carpark=carpark, arrival=arrival, departure=departure, at=at, brand=None, agent=agent)
    default, fare = default_quote(quotes, carpark=carpark, agent=agent)
    spaces_left = default.spaces_left if default else 0
    price = fare.price if fare else None
    return {
        "available": spaces_left > 0 and price is not None,
        "spaces_left": spaces_left,
        "price": _amount(price),
        "currency": carpark.currency,
        "days": len(stay_dates(arrival=arrival, departure=departure, tz=carpark.tz)),
        "products": [
            {
                "code": q.code,
                "name": q.name,
                "spaces_left": q.spaces_left,
                "fares": [{"code": f.code, "price": _amount(f.price), "refundable": f.refundable} for f in q.fares],
            }
            for q in quotes
        ],
    }


def _amount(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"
