"""Customer websites: the request's host picks the brand; a host that is no brand's gets 404.

search -> quote (price, spaces left) -> book -> confirmation; manage (reference + email): view, amend, cancel.
Times are shown and entered in the car park's timezone. A brand sells and shows only its own car parks and
bookings. Which bookings a browser may manage is kept in a signed cookie (no server-side session needed).
"""

import time
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache
from django.core.signing import BadSignature
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from apps.bookings import history, sale, selectors, services
from apps.bookings.cancellation import cancellation_fee, free_until
from apps.bookings.choices import Choice
from apps.bookings.forms import AmendForm, BookForm, ManageLookupForm, SearchForm, new_form_token
from apps.bookings.models import Booking
from apps.carparks.models import Brand, CarPark
from apps.carparks.selectors import brand_carparks, brand_for_host
from apps.core.actor import acting
from apps.core.concurrency import run_sync
from apps.products import selectors as product_catalogue
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


# --- search, quote, book -------------------------------------------------------------------------------------


async def home(request):
    site = await _site(request)
    form = SearchForm(carparks=site.carparks, tz_of=site.tz_of)
    return _page(request, site, "site/home.html", {"form": form})


async def quote(request):
    site = await _site(request)
    form = SearchForm(request.GET, carparks=site.carparks, tz_of=site.tz_of)
    if not form.is_valid():
        return _page(request, site, "site/home.html", {"form": form}, status=400)
    if not form.cleaned_data["form_token"]:
        # The booking form's one-time token goes in the page's address: a page fetched again (back, reload) keeps it.
        query = request.GET.copy()
        query["form_token"] = new_form_token()
        return HttpResponseRedirect(f"{request.path}?{query.urlencode()}")
    carpark = site.carpark(form.cleaned_data["carpark"])
    arrival, departure = form.cleaned_data["arrival_utc"], form.cleaned_data["departure_utc"]
    offer = await run_sync(selectors.quote, carpark=carpark, arrival=arrival, departure=departure, brand=site.brand)
    book_form = BookForm(
        initial={
            "carpark": carpark.code,
            "arrival": arrival,
            "departure": departure,
            "form_token": form.cleaned_data["form_token"],
        },
        tz=carpark.tz,
    )
    menu = await run_sync(_menu, site, carpark, arrival, departure, request.GET)
    search = [(k, request.GET[k]) for k in SEARCH_FIELDS if k in request.GET]
    return _page(request, site, "site/quote.html", _quote_context(carpark, offer, book_form, search=search, **menu))


SEARCH_FIELDS = ("carpark", "arrival", "arrival_fold", "departure", "departure_fold", "form_token")


def _menu(site: Site, carpark: CarPark, arrival, departure, data) -> dict:
    """The products side by side with their fares' prices, the extras, and the breakdown of the customer's choice
    (the default product and fare until they choose); an unknown choice or a refused promo code says why."""
    products = sale.quotes_for(
        carpark=carpark, arrival=arrival, departure=departure, at=timezone.now(), brand=site.brand, agent=None
    )
    extras = list(product_catalogue.catalogue(carpark=carpark)[1].values())
    choice = Choice.from_data(data, [x.code for x in extras])
    if not choice.product:
        default, fare = sale.default_quote(products, carpark=carpark, agent=None)
        if default is not None:
            choice = replace(choice, product=default.code, fare=fare.code if fare else None)
    priced, problem = None, ""
    try:
        priced = sale.sale_for(
            carpark=carpark,
            brand=site.brand,
            agent=None,
            arrival=arrival,
            departure=departure,
            at=timezone.now(),
            product=choice.product,
            fare=choice.fare,
            extras=choice.extras_list(),
            promo_code=choice.promo,
            new_sale=False,
        ).breakdown
    except services.BookingInvalid as exc:
        problem = str(exc)
    chosen = next((p for p in products if p.code == choice.product), None)
    return {
        "products": products,
        "extras": [(x, choice.extras.get(x.code, 0)) for x in extras],
        "choice": choice,
        "breakdown": priced,
        "choice_problem": problem,
        "choice_available": bool(chosen and chosen.spaces_left > 0 and priced is not None),
    }


def _quote_context(carpark: CarPark, offer: selectors.Quote, form: BookForm, **extra) -> dict:
    return {
        "carpark": carpark,
        "quote": offer,
        "form": form,
        **extra,
    }


async def book(request):
    if request.method != "POST":
        return HttpResponseRedirect(reverse("home"))
    site = await _site(request)
    carpark = site.carpark(request.POST.get("carpark", ""))
    if carpark is None:
        raise Http404("We do not sell that car park")
    form = BookForm(request.POST, tz=carpark.tz)
    valid = form.is_valid()
    arrival, departure = form.cleaned_data.get("arrival_utc"), form.cleaned_data.get("departure_utc")
    if not (arrival and departure):
        return _page(request, site, "site/home.html", {"form": _search_form(site, request.POST)}, status=400)
    offer = await run_sync(selectors.quote, carpark=carpark, arrival=arrival, departure=departure, brand=site.brand)
    menu = await run_sync(_menu, site, carpark, arrival, departure, request.POST)
    search = [(k, request.POST[k]) for k in SEARCH_FIELDS if k in request.POST]
    menu["search"] = search
    if not valid:
        return _page(request, site, "site/quote.html", _quote_context(carpark, offer, form, **menu), status=400)
    data, choice = form.cleaned_data, menu["choice"]
    try:
        booking = await run_sync(
            services.booking_create,
            carpark=carpark,
            arrival=arrival,
            departure=departure,
            customer_name=data["name"],
            customer_email=data["email"],
            customer_phone=data["phone"],
            vehicles=form.vehicles(),
            flight_outbound=data["flight_outbound"],
            flight_return=data["flight_return"],
            source=Booking.Source.WEB,
            brand=site.brand,
            form_token=data["form_token"],
            pending_payment=True,
            product=choice.product,
            fare=choice.fare,
            extras=choice.extras_list(),
            promo_code=choice.promo,
        )
    except services.NoCapacity as exc:
        offer = await run_sync(selectors.quote, carpark=carpark, arrival=arrival, departure=departure, brand=site.brand)
        full = _("Sorry, we are full: %(why)s.") % {"why": exc}
        context = _quote_context(carpark, offer, form, full_message=full, **menu)
        return _page(request, site, "site/quote.html", context, status=409)
    except services.BookingInvalid as exc:
        form.add_error(None, str(exc))
        return _page(request, site, "site/quote.html", _quote_context(carpark, offer, form, **menu), status=400)
    # Prepaid: until paid, the booking's page is its payment step (apps.payments.urls), then its confirmation.
    response = HttpResponseRedirect(reverse("site-booked", args=[booking.reference]))
    _allow_manage(request, response, booking.reference)
    return response


def _search_form(site: Site, data) -> SearchForm:
    form = SearchForm(data, carparks=site.carparks, tz_of=site.tz_of)
    form.is_valid()
    return form


async def booked(request, reference: str):
    site = await _site(request)
    booking = await _managed_booking(request, site, reference)
    return _page(request, site, "site/booked.html", _booking_context(booking))


# --- manage --------------------------------------------------------------------------------------------------


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


def _lookup_allowed(request, brand: Brand) -> bool:
    """At most MANAGE_LOOKUPS reference+email attempts per window (shared cache) per client address and brand, and
    per reference whoever asks (guessing one booking's email from many addresses). REMOTE_ADDR is the client's
    behind TRUSTED_PROXIES (asgi.py)."""
    window = int(time.time() // MANAGE_WINDOW_S)
    reference = request.POST.get("reference", "").strip().upper()[:16]
    keys = [f"manage-lookup:{brand.pk}:{request.META.get('REMOTE_ADDR', '')}:{window}"]
    if reference:
        keys.append(f"manage-lookup-ref:{brand.pk}:{reference}:{window}")
    allowed = True
    for key in keys:  # each attempt counts in every bucket, so a refused one still spends the address's
        cache.add(key, 0, timeout=MANAGE_WINDOW_S + 5)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr: a new window
            count = 1
        allowed = count <= MANAGE_LOOKUPS and allowed
    return allowed


async def manage(request):
    site = await _site(request)
    if request.method != "POST":
        return _page(request, site, "site/manage_lookup.html", {"form": ManageLookupForm()})
    form = ManageLookupForm(request.POST)
    if not await run_sync(_lookup_allowed, request, site.brand):
        form.is_valid()
        form.add_error(None, _("Too many attempts. Please wait a few minutes and try again."))
        return _page(request, site, "site/manage_lookup.html", {"form": form}, status=429)
    if not form.is_valid():
        return _page(request, site, "site/manage_lookup.html", {"form": form}, status=400)
    booking = await run_sync(
        selectors.brand_booking,
        brand_id=site.brand.pk,
        reference=form.cleaned_data["reference"],
        email=form.cleaned_data["email"],
    )
    if booking is None:
        form.add_error(None, _("We could not find a booking with that reference and email address."))
        return _page(request, site, "site/manage_lookup.html", {"form": form}, status=404)
    response = HttpResponseRedirect(reverse("site-booking", args=[booking.reference]))
    _allow_manage(request, response, booking.reference)
    return response


def _amend_form(booking: Booking, data=None) -> AmendForm:
    tz = booking.carpark.tz
    regs = [v.registration_raw or v.registration for v in booking.vehicles.all()]
    initial = {
        "arrival": booking.arrival,
        "departure": booking.departure,
        "registration": regs[0] if regs else "",
        "registration_2": regs[1] if len(regs) > 1 else "",
        "flight_outbound": booking.flight_outbound,
        "flight_return": booking.flight_return,
    }
    return AmendForm(data, initial=initial, tz=tz)


async def booking_detail(request, reference: str):
    site = await _site(request)
    booking = await _managed_booking(request, site, reference)
    # ?changed=1: back from paying the difference of an amendment (apps.payments), which has been applied
    notice = _("Your booking has been changed.") if request.GET.get("changed") else ""
    if request.GET.get("resent"):
        notice = _("We have emailed your confirmation again.")
    context = _booking_context(booking, form=_amend_form(booking), notice=notice)
    context["history"] = await run_sync(history.booking_history, booking_id=booking.pk)
    return _page(request, site, "site/booking.html", context)


async def booking_amend(request, reference: str):
    site = await _site(request)
    booking = await _managed_booking(request, site, reference)
    if request.method != "POST":
        return HttpResponseRedirect(reverse("site-booking", args=[reference]))
    form = _amend_form(booking, request.POST)
    if not form.is_valid():
        return _page(request, site, "site/booking.html", _booking_context(booking, form=form), status=400)
    try:
        with acting("customer"):
            await run_sync(
                services.booking_amend,
                booking=booking,
                arrival=form.cleaned_data["arrival_utc"],
                departure=form.cleaned_data["departure_utc"],
                vehicles=form.vehicles(),
                flight_outbound=form.cleaned_data["flight_outbound"],
                flight_return=form.cleaned_data["flight_return"],
            )
    except services.NoCapacity as exc:
        form.add_error(None, _("Sorry, we are full: %(why)s. Your booking is unchanged.") % {"why": exc})
        return _page(request, site, "site/booking.html", _booking_context(booking, form=form), status=409)
    except (services.BookingInvalid, services.BookingClosed) as exc:
        form.add_error(None, str(exc))
        return _page(request, site, "site/booking.html", _booking_context(booking, form=form), status=400)
    booking = await run_sync(selectors.brand_booking_by_reference, brand_id=site.brand.pk, reference=reference)
    context = _booking_context(booking, form=_amend_form(booking), notice=_("Your booking has been changed."))
    context["history"] = await run_sync(history.booking_history, booking_id=booking.pk)
    return _page(request, site, "site/booking.html", context)


async def booking_cancel(request, reference: str):
    site = await _site(request)
    booking = await _managed_booking(request, site, reference)
    if request.method != "POST":
        return HttpResponseRedirect(reverse("site-booking", args=[reference]))
    notice = _("Your booking has been cancelled.")
    try:
        with acting("customer"):
            await run_sync(services.booking_cancel, booking=booking)
    except services.BookingClosed:
        notice = _("This booking has already started and can no longer be cancelled online.")
    booking = await run_sync(selectors.brand_booking_by_reference, brand_id=site.brand.pk, reference=reference)
    context = _booking_context(booking, notice=notice)
    context["history"] = await run_sync(history.booking_history, booking_id=booking.pk)
    return _page(request, site, "site/booking.html", context)


# --- where to find us, policies ------------------------------------------------------------------------------


async def carpark(request, code: str):
    site = await _site(request)
    found = site.carpark(code)
    if found is None:
        raise Http404("We do not sell that car park")
    return _page(request, site, "site/carpark.html", {"carpark": found})


async def policy(request, slug: str):
    """The brand's terms, cancellation policy or privacy notice; one it has not written is not there."""
    site = await _site(request)
    found = next((p for p in site.brand.policies() if p.slug == slug), None)
    if found is None:
        raise Http404("No such page")
    context = {"policy": found}
    if slug == "privacy":  # how long each car park keeps what, from its settings (apps.customers.retention)
        context["retention"] = {"carparks": site.carparks, "raw_email_days": settings.RAW_EMAIL_RETENTION_DAYS}
    return _page(request, site, "site/policy.html", context)
