"""Overstay pay links (`/pay/<token>`: the token is the key; any host) and the lanes' display pages
(`/lanes/<lane>/display?token=...`: a display token, never public), a QR code of the held overstay's pay link,
kept up to date over a WebSocket (consumers/lane_display.py) so the screen follows the barrier."""

import json

from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.views.decorators.csp import csp_override
from django.views.decorators.http import require_POST

from apps.core.concurrency import run_sync
from apps.payments import overstay, services
from apps.payments.display import lane_display_context
from apps.payments.models import OverstayPayLink, Payment
from apps.payments.providers import provider_name
from apps.payments.providers.demo import DECLINE_TOKEN
from apps.payments.views import TRY_AGAIN, _stripe_csp


def _link(token: str) -> OverstayPayLink:
    link = OverstayPayLink.objects.select_related("booking__carpark", "booking__brand", "visit").filter(token=token)
    found = link.first()
    if found is None:
        raise Http404("No such pay link")
    return found


def _context(link, payment, **extra) -> dict:
    from django.conf import settings

    return {
        "link": link,
        "payment": payment,
        "provider": provider_name(),
        "publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
        "stripe_js_url": settings.STRIPE_JS_URL,
        **extra,
    }


async def pay_overstay(request, token: str):
    link = await run_sync(_link, token)
    if link.paid_at is not None:
        return render(request, "payments/pay_overstay.html", _context(link, None, paid=True))
    try:
        link, payment = await run_sync(overstay.payment_start_overstay, token=token)
    except services.ProviderUnavailable:
        return render(request, "payments/pay_overstay.html", _context(link, None, error=TRY_AGAIN), status=503)
    return render(request, "payments/pay_overstay.html", _context(link, payment))


pay_overstay = csp_override(_stripe_csp())(pay_overstay)


async def _payment(token: str, payment_id) -> Payment | None:
    link = await run_sync(_link, token)
    return await Payment.objects.filter(pk=int(payment_id or 0), overstay_link=link).afirst()


@require_POST
async def pay_overstay_confirm(request, token: str):
    """As the booking's card step (apps.payments.views.pay_confirm), for a pay link."""
    try:
        body = json.loads(request.body or b"{}")
        payment = await _payment(token, body.get("payment"))
    except (ValueError, TypeError):
        return JsonResponse({"status": "error", "error": "Bad request"}, status=400)
    if payment is None:
        return JsonResponse({"status": "error", "error": "No such payment"}, status=404)
    try:
        if body.get("token"):
            intent = await run_sync(services.payment_card_confirm, payment_id=payment.pk, card_token=str(body["token"]))
            status, secret = intent.status, intent.client_secret
        else:
            payment = await run_sync(services.payment_sync, payment_id=payment.pk)
            status, secret = ("succeeded" if payment.status == Payment.Status.SUCCEEDED else "open"), ""
    except services.CardDeclined as exc:
        answer = {"status": "declined", "error": str(exc)}
        _, again = await run_sync(overstay.payment_start_overstay, token=token)
        answer["payment"] = again.pk
        return JsonResponse(answer, status=402)
    except services.ProviderUnavailable:
        return JsonResponse({"status": "unavailable", "error": TRY_AGAIN}, status=503)
    answer = {"status": status, "next": f"/pay/{token}"}
    if status == "requires_action":
        answer["client_secret"] = secret
    return JsonResponse(answer)


@require_POST
async def pay_overstay_demo(request, token: str):
    payment = await _payment(token, request.POST.get("payment"))
    if payment is None or payment.provider != "demo":
        return HttpResponseRedirect(f"/pay/{token}")
    card = DECLINE_TOKEN if request.POST.get("outcome") == "decline" else "demo-card"
    try:
        await run_sync(services.payment_card_confirm, payment_id=payment.pk, card_token=card)
    except services.CardDeclined as exc:
        link, again = await run_sync(overstay.payment_start_overstay, token=token)
        return render(request, "payments/pay_overstay.html", _context(link, again, error=str(exc)), status=402)
    return HttpResponseRedirect(f"/pay/{token}")


async def lane_display(request, lane_id: int):
    token = request.GET.get("token", "")
    if not await run_sync(overstay.lane_display_allowed, lane_id=lane_id, token=token):
        return HttpResponse("A display token is required.", status=403, content_type="text/plain")
    context = await run_sync(lane_display_context, lane_id=lane_id, absolute=request.build_absolute_uri)
    response = render(request, "payments/lane_display.html", context)
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"  # the page's address carries its token
    return response
