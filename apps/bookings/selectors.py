"""Booking reads: tariffs, quotes and bookings as plain data for the edges (website, API)."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Q

from apps.bookings import capacity
from apps.bookings.localtime import utc_iso
from apps.bookings.models import Booking
from apps.bookings.pricing import TariffRule, price_stay, stay_dates
from apps.carparks.models import Brand, CarPark, Tariff
from apps.core.recent import Recent
from apps.products import holds
from apps.products.models import WEB

# Tariff rules read in the last few seconds, per process (apps.core.recent): every quote and booking prices a stay,
# tariffs change seldom. The price: a tariff edited in the admin applies to new quotes and bookings within
# TARIFF_CACHE_S.
TARIFF_CACHE_S = 5.0
_tariffs: Recent[tuple[int, int | None], TariffRule | None] = Recent(TARIFF_CACHE_S)


def tariff_rule(*, carpark: CarPark, brand: Brand | None = None) -> TariffRule | None:
    """The brand's override when it has one, else the car park's default tariff; None when it has neither."""
    key = (carpark.pk, brand.pk if brand else None)
    return _tariffs.get(key, lambda: _load_tariff_rule(carpark=carpark, brand=brand))


def _load_tariff_rule(*, carpark: CarPark, brand: Brand | None) -> TariffRule | None:
    rows = (
        Tariff.objects.filter(carpark=carpark)
        .filter(Q(brand=None) | Q(brand=brand))
        .values_list("brand_id", "daily_rate", "minimum_charge", "bands__from_day", "bands__daily_rate")
    )  # one query: each tariff joined with its bands
    by_brand: dict = {}
    for brand_id, daily_rate, minimum, from_day, band_rate in rows:
        rule = by_brand.setdefault(brand_id, (daily_rate, minimum, []))
        if from_day is not None:
            rule[2].append((from_day, band_rate))
    chosen = by_brand.get(brand.pk if brand else None) or by_brand.get(None)
    if chosen is None:
        return None
    daily_rate, minimum, bands = chosen
    return TariffRule(daily_rate=daily_rate, minimum_charge=minimum, bands=tuple(sorted(bands)))


def tariff_price(*, carpark: CarPark, brand: Brand | None, arrival: datetime, departure: datetime) -> Decimal | None:
    rule = tariff_rule(carpark=carpark, brand=brand)
    if rule is None:
        return None
    return price_stay(rule, arrival=arrival, departure=departure, tz=carpark.tz)


@dataclass(frozen=True)
class Quote:
    carpark: str
    carpark_name: str
    arrival: datetime
    departure: datetime
    days: int
    price: Decimal | None
    currency: str
    spaces_left: int

    @property
    def available(self) -> bool:
        return self.spaces_left > 0 and self.price is not None


def quote(*, carpark: CarPark, arrival: datetime, departure: datetime, brand: Brand | None = None) -> Quote:
    """Price and spaces left for a stay on the websites (no holds taken: the booking re-checks under locks); the
    websites' accepted overbooking allowances count as the holds count them."""
    dates = stay_dates(arrival=arrival, departure=departure, tz=carpark.tz)
    allowance = holds.allowances(carpark_id=carpark.pk, channel=WEB, dates=dates)
    return Quote(
        carpark=carpark.code,
        carpark_name=carpark.name,
        arrival=arrival,
        departure=departure,
        days=len(dates),
        price=tariff_price(carpark=carpark, brand=brand, arrival=arrival, departure=departure),
        currency=carpark.currency,
        spaces_left=capacity.spaces_left(
            carpark_id=carpark.pk, capacity=carpark.capacity, dates=dates, allowance=allowance
        ),
    )


def booking_as_dict(booking: Booking) -> dict:
    """A booking as the API shows it (docs/operations.md 5); times in UTC with `Z`."""
    customer = booking.customer
    return {
        "reference": booking.reference,
        "agent_ref": booking.agent_ref,
        "carpark": booking.carpark.code,
        "status": booking.status,
        "arrival": utc_iso(booking.arrival),
        "departure": utc_iso(booking.departure),
        "customer": {"name": customer.name, "email": customer.email, "phone": customer.phone},
        "vehicles": [
            {"registration": v.registration, "make": v.make, "model": v.model, "colour": v.colour}
            for v in booking.vehicles.all()
        ],
        "flights": {
            "outbound": booking.flight_outbound,
            "return": booking.flight_return,
            "return_estimated": utc_iso(booking.return_estimated) if booking.return_estimated else None,
            "return_status": booking.return_status or None,
        },
        "product": booking.product.code if booking.product_id else None,
        "fare": booking.fare.code if booking.fare_id else None,
        "extras": [
            {"code": e.extra.code, "quantity": e.quantity, "price": f"{e.price:.2f}"} for e in booking.extras.all()
        ],
        "price": f"{booking.price:.2f}",
        "currency": booking.currency,
        "overbooked": booking.overbooked,
        "created_at": utc_iso(booking.created_at),
        "updated_at": utc_iso(booking.updated_at),
    }


def booking_events_data(*, booking_ids: list[int]) -> list[dict]:
    """Bookings as the `booking` event shows them to staff dashboards (docs/contracts-internal.md), with the car
    park's id to send it to (`carpark_id`, not part of the event)."""
    return [booking_event_data(b) for b in _with_details(Booking.objects.filter(pk__in=booking_ids))]


def booking_event_data(b: Booking) -> dict:
    """One booking's `booking` event (with `carpark_id`), from a booking with its details at hand (`_with_details`)."""
    return {
        "carpark_id": b.carpark_id,
        "reference": b.reference,
        "carpark": b.carpark.code,
        "customer": b.customer.name,
        "plates": [v.registration for v in b.vehicles.all()],
        "sold": sold_words(b),
        "arrival": utc_iso(b.arrival),
        "departure": utc_iso(b.departure),
        "status": b.status,
        "return_flight": b.flight_return,
        "return_status": b.return_status,
        "return_estimated": utc_iso(b.return_estimated) if b.return_estimated else None,
    }


def sold_words(booking: Booking) -> str:
    """What staff need to know on arrival of what was sold: the product and the extras ("MG · EV charging x 1")."""
    parts = [booking.product.code] if booking.product_id else []
    parts += [f"{e.extra.name} x {e.quantity}" for e in booking.extras.all()]
    return " · ".join(parts)


def _with_details(qs):
    return qs.select_related("carpark", "customer", "product", "fare").prefetch_related("vehicles", "extras__extra")


def agent_booking(*, agent_id: int, ref: str) -> Booking | None:
    """One of the agent's bookings by our reference first, then by its own reference."""
    ref = ref.strip()
    mine = _with_details(Booking.objects.filter(agent_id=agent_id))
    return mine.filter(reference=ref.upper()).first() or mine.filter(agent_ref=ref).first()


def agent_bookings_page(
    *, agent_id: int, updated_since: datetime | None, after: tuple[datetime, int] | None, limit: int
) -> tuple[list[Booking], bool]:
    """The agent's bookings ordered by (updated_at, id), from `updated_since` inclusive, after the cursor.

    Returns the page and whether more follow."""
    qs = Booking.objects.filter(agent_id=agent_id)
    if updated_since is not None:
        qs = qs.filter(updated_at__gte=updated_since)
    if after is not None:
        at, pk = after
        qs = qs.filter(Q(updated_at__gt=at) | Q(updated_at=at, id__gt=pk))
    rows = list(_with_details(qs.order_by("updated_at", "id"))[: limit + 1])
    return rows[:limit], len(rows) > limit


def brand_booking(*, brand_id: int, reference: str, email: str) -> Booking | None:
    """A website booking of this brand, found by our reference and the customer's email (both must match)."""
    reference, email = reference.strip().upper(), email.strip()
    if not reference or not email:
        return None
    return (
        _with_details(Booking.objects.filter(brand_id=brand_id, reference=reference))
        .filter(customer__email__iexact=email)
        .first()
    )


def brand_booking_by_reference(*, brand_id: int, reference: str) -> Booking | None:
    return _with_details(Booking.objects.filter(brand_id=brand_id, reference=reference.strip().upper())).first()
