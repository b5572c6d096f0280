"""The payment step of the customer websites (quote -> details -> pay -> confirmed) and the providers' webhooks.

Thin edges over apps.payments.services. The browser never sets an amount: the server creates the intent for the
booking's price; the card is tokenised by the provider's script in the browser and never reaches us.
"""

import contextlib
import json
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.utils.csp import CSP
from django.views.decorators.csp import csp_override
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from apps.bookings import services as booking_services
from apps.bookings.models import Booking
from apps.bookings.views.booking import booked
from apps.bookings.views.common import _allow_manage, _booking_context, _managed_booking, _page, _site
from apps.bookings.views.manage import _amend_form, amend_changes, booking_amend
from apps.core.actor import acting
from apps.core.concurrency import run_sync
from apps.payments import services
from apps.payments.models import Payment
from apps.payments.providers import provider_name
from apps.payments.providers.demo import DECLINE_TOKEN

TRY_AGAIN = "We could not reach our payment provider. Your booking is not confirmed yet: please try again in a moment."


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _stripe_csp() -> dict:
    """The pay page loads Stripe.js, which talks to Stripe's API and shows 3-D Secure in frames (Stripe's list)."""
    js = _origin(settings.STRIPE_JS_URL)
    api = _origin(settings.STRIPE_API_BASE or "https://api.stripe.com")
    csp = dict(settings.SECURE_CSP)
    csp["script-src"] = [*csp["script-src"], js]
    csp["connect-src"] = [*csp["connect-src"], api, js]
    csp["frame-src"] = [CSP.SELF, js, "https://hooks.stripe.com"]
    return csp


def _pay_context(booking: Booking, payment: Payment | None, **extra) -> dict:
    return _booking_context(
        booking,
        payment=payment,
        amount=payment.amount if payment else booking.price,
        provider=provider_name(),
        publishable_key=settings.STRIPE_PUBLISHABLE_KEY,
        stripe_js_url=settings.STRIPE_JS_URL,
        **extra,
    )


def _next_page(booking: Booking, payment: Payment | None = None) -> str:
    if payment is not None and payment.purpose == Payment.Purpose.TOP_UP:
        return reverse("site-booking", args=[booking.reference]) + "?changed=1"
    return reverse("site-booked", args=[booking.reference])


async def pay(request, reference: str):
    """A booking's page after the booking form: its payment step while it waits for payment, the confirmation
    (apps.bookings.views.booked) once paid."""
    site = await _site(request)
    booking = await _managed_booking(request, site, reference)
    if booking.status != Booking.Status.PENDING_PAYMENT:
        return await booked(request, reference)
    try:
        payment = await run_sync(services.payment_start, booking_id=booking.pk)
    except services.ProviderUnavailable:
        return _page(request, site, "payments/pay.html", _pay_context(booking, None, error=TRY_AGAIN), status=503)
    except services.PaymentNotDue:
        return await booked(request, reference)
    return _page(request, site, "payments/pay.html", _pay_context(booking, payment))


pay = csp_override(_stripe_csp())(pay)


async def _own_payment(request, reference: str, payment_id) -> tuple[Booking, Payment | None]:
    site = await _site(request)
    booking = await _managed_booking(request, site, reference)
    payment = await Payment.objects.filter(pk=int(payment_id or 0), booking_id=booking.pk).afirst()
    return booking, payment


async def amend(request, reference: str):
    """A website booking's amendment that costs more (new dates, more extras) is paid first: a new intent for the
    difference, which services.booking_amend_quote gives (the amendment tried and rolled back: spaces, extras'
    stock and price as booking_amend decides them). Anything else, or a change refused, is the websites' own amend
    (apps.bookings.views.manage.booking_amend, which says why; a lower price is refunded on its signal)."""
    site = await _site(request)
    booking = await _managed_booking(request, site, reference)
    if request.method != "POST" or booking.status != Booking.Status.CONFIRMED or booking.source != Booking.Source.WEB:
        return await booking_amend(request, reference)
    form = await run_sync(_amend_form, booking, request.POST)
    if not form.is_valid():
        return await booking_amend(request, reference)
    changes = amend_changes(booking, form)
    try:
        with acting("customer"):
            offer = await run_sync(booking_services.booking_amend_quote, booking=booking, **changes)
    except (booking_services.NoCapacity, booking_services.BookingInvalid, booking_services.BookingClosed):
        return await booking_amend(request, reference)
    if offer.price_difference <= 0:
        return await booking_amend(request, reference)
    changes = {**changes, "arrival": changes["arrival"].isoformat(), "departure": changes["departure"].isoformat()}
    try:
        payment = await run_sync(
            services.payment_start_top_up, booking_id=booking.pk, changes=changes, amount=offer.price_difference
        )
    except services.ProviderUnavailable:
        return _page(request, site, "payments/pay.html", _pay_context(booking, None, error=TRY_AGAIN), status=503)
    context = _pay_context(booking, payment, top_up=offer)
    return _page(request, site, "payments/pay.html", context)


amend = csp_override(_stripe_csp())(amend)


@require_POST
async def pay_confirm(request, reference: str):
    """The card step (JSON): {payment, token} confirms with the tokenised card; {payment, token: ""} after 3-D
    Secure reads the intent back. Answers {status, error?, client_secret?, next?}."""
    try:
        body = json.loads(request.body or b"{}")
        booking, payment = await _own_payment(request, reference, body.get("payment"))
    except (ValueError, TypeError):
        return JsonResponse({"status": "error", "error": "Bad request"}, status=400)
    if payment is None:
        return JsonResponse({"status": "error", "error": "No such payment"}, status=404)
    token = str(body.get("token") or "")
    try:
        if token:
            intent = await run_sync(services.payment_card_confirm, payment_id=payment.pk, card_token=token)
            status, secret = intent.status, intent.client_secret
        else:
            payment = await run_sync(services.payment_sync, payment_id=payment.pk)
            status, secret = ("succeeded" if payment.status == Payment.Status.SUCCEEDED else "open"), ""
    except services.CardDeclined as exc:
        answer = {"status": "declined", "error": str(exc)}
        with contextlib.suppress(services.ProviderUnavailable, services.PaymentNotDue):  # the next card: a new intent
            answer["payment"] = (await run_sync(services.payment_start, booking_id=booking.pk)).pk
        return JsonResponse(answer, status=402)
    except services.ProviderUnavailable:
        return JsonResponse({"status": "unavailable", "error": TRY_AGAIN}, status=503)
    answer = {"status": status, "next": _next_page(booking, payment)}
    if status == "requires_action":
        answer["client_secret"] = secret
    return JsonResponse(answer)


@require_POST
async def pay_demo(request, reference: str):
    """The demo provider's card step (a plain form): no card is charged."""
    booking, payment = await _own_payment(request, reference, request.POST.get("payment"))
    site = await _site(request)
    if payment is None or payment.provider != "demo":
        return HttpResponseRedirect(reverse("site-pay", args=[reference]))
    token = DECLINE_TOKEN if request.POST.get("outcome") == "decline" else "demo-card"
    try:
        await run_sync(services.payment_card_confirm, payment_id=payment.pk, card_token=token)
    except services.CardDeclined as exc:
        if payment.purpose == Payment.Purpose.BOOKING:
            payment = await run_sync(services.payment_start, booking_id=booking.pk)
        else:
            payment = await run_sync(
                services.payment_start_top_up, booking_id=booking.pk, changes=payment.changes, amount=payment.amount
            )
        context = _pay_context(booking, payment, error=str(exc))
        return _page(request, site, "payments/pay.html", context, status=402)
    response = HttpResponseRedirect(_next_page(booking, payment))
    _allow_manage(request, response, booking.reference)
    return response


@csrf_exempt
@require_POST
async def stripe_webhook(request):
    """Stripe's events: verified with the library (400 and nothing stored otherwise), applied by a job."""
    try:
        await run_sync(
            services.webhook_receive,
            provider="stripe",
            payload=request.body,
            signature=request.headers.get("Stripe-Signature", ""),
        )
    except services.BadSignature:
        return HttpResponse("bad signature", status=400, content_type="text/plain")
    return HttpResponse("ok", content_type="text/plain")
