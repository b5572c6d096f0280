"""Manage a booking (reference + email): view, amend, cancel."""

import time

from django.core.cache import cache
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext as _

from apps.bookings import history, selectors, services
from apps.bookings.cancellation import cancellation_fee
from apps.bookings.forms import AmendForm, ManageLookupForm
from apps.bookings.models import Booking
from apps.bookings.templatetags.money import money
from apps.bookings.views.common import (
    MANAGE_LOOKUPS,
    MANAGE_WINDOW_S,
    _allow_manage,
    _booking_context,
    _managed_booking,
    _page,
    _site,
)
from apps.carparks.models import Brand
from apps.core.actor import acting
from apps.core.concurrency import run_sync
from apps.products import selectors as product_catalogue


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
    """The manage page's change form: dates, vehicles, flights and the car park's extras (a database read: call it
    through run_sync)."""
    tz = booking.carpark.tz
    regs = [v.registration_raw or v.registration for v in booking.vehicles.all()]
    initial = {
        "arrival": booking.arrival,
        "departure": booking.departure,
        "registration": regs[0] if regs else "",
        "registration_2": regs[1] if len(regs) > 1 else "",
        "flight_outbound": booking.flight_outbound,
        "flight_return": booking.flight_return,
        **{f"extra_{code}": quantity for code, quantity in _booked_extras(booking).items()},
    }
    extras = product_catalogue.catalogue(carpark=booking.carpark)[1].values() if booking.product_id else ()
    return AmendForm(data, initial=initial, tz=tz, extras=extras, currency=booking.carpark.currency)


def _booked_extras(booking: Booking) -> dict[str, int]:
    return {e.extra.code: e.quantity for e in booking.extras.all()}


def amend_changes(booking: Booking, form: AmendForm) -> dict:
    """What the valid form asks for, as services.booking_amend takes it (with its API PATCH: one service). Extras
    go in only when they differ: a new choice of extras re-prices the stay."""
    data = form.cleaned_data
    changes = {
        "arrival": data["arrival_utc"],
        "departure": data["departure_utc"],
        "vehicles": form.vehicles(),
        "flight_outbound": data["flight_outbound"],
        "flight_return": data["flight_return"],
    }
    wanted = form.extras_wanted()
    if form.extras and wanted != _booked_extras(booking):
        changes["extras"] = [{"code": code, "quantity": quantity} for code, quantity in wanted.items()]
    return changes


async def booking_detail(request, reference: str):
    site = await _site(request)
    booking = await _managed_booking(request, site, reference)
    # ?changed=1: back from paying the difference of an amendment (apps.payments), which has been applied
    notice = _("Your booking has been changed.") if request.GET.get("changed") else ""
    if request.GET.get("resent"):
        notice = _("We have emailed your confirmation again.")
    context = _booking_context(booking, form=await run_sync(_amend_form, booking), notice=notice)
    context["history"] = await run_sync(history.booking_history, booking_id=booking.pk)
    return _page(request, site, "site/booking.html", context)


async def booking_amend(request, reference: str):
    site = await _site(request)
    booking = await _managed_booking(request, site, reference)
    if request.method != "POST":
        return HttpResponseRedirect(reverse("site-booking", args=[reference]))
    form = await run_sync(_amend_form, booking, request.POST)
    if not form.is_valid():
        return _page(request, site, "site/booking.html", _booking_context(booking, form=form), status=400)
    try:
        with acting("customer"):
            await run_sync(services.booking_amend, booking=booking, **amend_changes(booking, form))
    except services.NoCapacity as exc:
        form.add_error(None, _("Sorry, we are full: %(why)s. Your booking is unchanged.") % {"why": exc})
        return _page(request, site, "site/booking.html", _booking_context(booking, form=form), status=409)
    except (services.BookingInvalid, services.BookingClosed) as exc:
        form.add_error(None, str(exc))
        return _page(request, site, "site/booking.html", _booking_context(booking, form=form), status=400)
    booking = await run_sync(selectors.brand_booking_by_reference, brand_id=site.brand.pk, reference=reference)
    form = await run_sync(_amend_form, booking)
    context = _booking_context(booking, form=form, notice=_("Your booking has been changed."))
    context["history"] = await run_sync(history.booking_history, booking_id=booking.pk)
    return _page(request, site, "site/booking.html", context)


async def booking_cancel(request, reference: str):
    site = await _site(request)
    booking = await _managed_booking(request, site, reference)
    if request.method != "POST":
        return HttpResponseRedirect(reverse("site-booking", args=[reference]))
    notice = _("Your booking has been cancelled.")
    # What the cancel terms above the button promised (apps.payments refunds it after the commit).
    refund = booking.price - cancellation_fee(booking) if booking.status == Booking.Status.CONFIRMED else 0
    if booking.source == Booking.Source.WEB and refund > 0:
        notice = _("Your booking has been cancelled and %(refund)s is refunded to your card.") % {
            "refund": money(refund, booking.currency)
        }
    try:
        with acting("customer"):
            await run_sync(services.booking_cancel, booking=booking)
    except services.BookingClosed:
        notice = _("This booking has already started and can no longer be cancelled online.")
    booking = await run_sync(selectors.brand_booking_by_reference, brand_id=site.brand.pk, reference=reference)
    context = _booking_context(booking, notice=notice)
    context["history"] = await run_sync(history.booking_history, booking_id=booking.pk)
    return _page(request, site, "site/booking.html", context)
