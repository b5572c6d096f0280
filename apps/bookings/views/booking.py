"""Search -> quote (products, fares, extras, promo code, price, spaces left) -> book -> confirmation."""

from dataclasses import replace

from django.http import Http404, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.bookings import sale, selectors, services
from apps.bookings.choices import Choice
from apps.bookings.forms import BookForm, SearchForm, new_form_token
from apps.bookings.models import Booking
from apps.bookings.views.common import (
    Site,
    _allow_manage,
    _booking_context,
    _managed_booking,
    _page,
    _site,
)
from apps.carparks.models import CarPark
from apps.core.concurrency import run_sync
from apps.products import selectors as product_catalogue


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
