"""What the customer websites' pages share: the site of the request's host, rendering in the car park's
timezone, and which bookings this browser may manage (a signed cookie: no server-side session needed)."""

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.core.signing import BadSignature
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone, translation

from apps.bookings import selectors
from apps.bookings.cancellation import cancellation_fee, free_until
from apps.bookings.models import Booking
from apps.carparks.models import Brand, CarPark
from apps.carparks.selectors import brand_carparks, brand_for_host
from apps.core.concurrency import run_sync
from apps.products.fares import FareTerms

MANAGE_COOKIE = "pg_manage"
MANAGE_COOKIE_SALT = "parkgate.manage"
MANAGE_LOOKUPS = 10  # attempts per client address and brand ...
MANAGE_WINDOW_S = 600  # ... per 10 minutes


@dataclass(frozen=True)
class Site:
    brand: Brand
    carparks: list[CarPark]

    def carpark(self, code: str) -> CarPark | None:
        return next((c for c in self.carparks if c.code == (code or "").strip().upper()), None)

    @property
    def tz_of(self) -> dict[str, ZoneInfo]:
        return {c.code: c.tz for c in self.carparks}


def _load_site(host: str) -> Site | None:
    brand = brand_for_host(host=host)
    return None if brand is None else Site(brand=brand, carparks=brand_carparks(brand=brand))


async def _site(request) -> Site:
    site = await run_sync(_load_site, request.get_host())
    if site is None:
        raise Http404("No site here")
    translation.activate(site.brand.language)  # this request's (its own context): pages and messages in views
    return site


def _page(request, site: Site, template: str, context: dict, status: int = 200):
    """Rendered in the timezone of the page's car park (`carpark` in the context): template filters show aware
    datetimes in the current timezone, which is otherwise settings.TIME_ZONE (UTC)."""
    carpark = context.get("carpark")
    with timezone.override(carpark.tz if carpark else None):
        return render(request, template, {"brand": site.brand, "carparks": site.carparks, **context}, status=status)


def _allowed_refs(request) -> list[str]:
    try:
        value = request.get_signed_cookie(MANAGE_COOKIE, salt=MANAGE_COOKIE_SALT, max_age=86400)
    except (KeyError, BadSignature):
        return []
    return [r for r in value.split(",") if r]


def _allow_manage(request, response, reference: str) -> None:
    refs = [reference, *[r for r in _allowed_refs(request) if r != reference]][:10]
    response.set_signed_cookie(
        MANAGE_COOKIE,
        ",".join(refs),
        salt=MANAGE_COOKIE_SALT,
        max_age=86400,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure(),
    )


async def _managed_booking(request, site: Site, reference: str) -> Booking:
    """The brand's booking, if this browser proved it may see it (booked it, or gave reference + email)."""
    if reference not in _allowed_refs(request):
        raise Http404("No such booking")
    booking = await run_sync(selectors.brand_booking_by_reference, brand_id=site.brand.pk, reference=reference)
    if booking is None:
        raise Http404("No such booking")
    return booking


def _booking_context(booking: Booking, **extra) -> dict:
    fee = cancellation_fee(booking)  # shown before the customer confirms a cancellation
    return {
        "booking": booking,
        "carpark": booking.carpark,
        "vehicles": list(booking.vehicles.all()),
        "cancellation_fee": fee,
        "refund_if_cancelled": booking.price - fee,
        "free_cancellation_until": free_until(booking),
        "extras": list(booking.extras.all()),
        "fare_terms": FareTerms.of(booking.fare).describe() if booking.fare_id else "",
        **extra,
    }
