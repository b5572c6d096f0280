"""Staff pages for card payments: a booking's payments with partial refunds (reason required, audited), and the
failed payments and refunds of their car parks (a failed refund can be sent again). Supervisors and accountants;
a booking at a car park the staff member is not assigned to answers 404. The provider's payouts, matched or not
against our card payments, and card clearing reconciled: accountants only (one set of books for all car parks)."""

from decimal import Decimal, InvalidOperation

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseForbidden, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.accounting.permissions import is_accountant
from apps.bookings.models import Booking
from apps.core.concurrency import run_sync
from apps.payments import selectors as payment_selectors
from apps.payments import services as payments
from apps.payments.adjustments import payment_refund_by_staff
from apps.payments.models import Payment, Refund
from apps.payments.payouts import clearing_reconciliation
from apps.staff import selectors

PAYMENT_ROLES = ("supervisor", "accountant")


async def _carpark_ids(request) -> list[int]:
    user = await request.auser()
    return await run_sync(selectors.carpark_ids_for_user, user_id=user.pk, roles=PAYMENT_ROLES)


async def _booking(request, reference: str) -> Booking:
    ids = await _carpark_ids(request)
    booking = (
        await Booking.objects.select_related("carpark", "customer")
        .filter(reference=reference.upper(), carpark_id__in=ids)
        .afirst()
    )
    if booking is None:
        raise Http404("No such booking")
    return booking


@login_required
async def booking_payments(request, reference: str):
    booking = await _booking(request, reference)
    error = ""
    if request.method == "POST":
        user = await request.auser()
        payment = await Payment.objects.filter(pk=int(request.POST.get("payment") or 0), booking=booking).afirst()
        try:
            amount = Decimal(request.POST.get("amount", "").strip())
            if payment is None:
                raise payments.RefundInvalid("choose a payment")
            await run_sync(
                payment_refund_by_staff,
                payment_id=payment.pk,
                amount=amount,
                reason=request.POST.get("reason", ""),
                actor=user,
            )
            return HttpResponseRedirect(reverse("dashboard-booking-payments", args=[booking.reference]))
        except InvalidOperation:
            error = "Enter the amount to refund, e.g. 12.50."
        except payments.RefundInvalid as exc:
            error = str(exc)
    rows = await run_sync(payment_selectors.booking_payments, booking_id=booking.pk)
    context = {"booking": booking, "rows": rows, "error": error, "user": await request.auser()}
    return render(request, "staff/booking_payments.html", context, status=400 if error else 200)


@login_required
async def failed_payments(request):
    found = await run_sync(payment_selectors.failed_payments, carpark_ids=await _carpark_ids(request))
    return render(request, "staff/failed_payments.html", {**found, "user": await request.auser()})


@login_required
@require_POST
async def refund_retry(request, refund_id: int):
    ids = await _carpark_ids(request)
    refund = await Refund.objects.filter(pk=refund_id, payment__booking__carpark_id__in=ids).afirst()
    if refund is None:
        raise Http404("No such refund")
    await run_sync(payments.refund_retry, refund_id=refund.pk, actor=await request.auser())
    return HttpResponseRedirect(reverse("dashboard-failed-payments"))


@login_required
async def payouts(request):
    user = await request.auser()
    if not await run_sync(is_accountant, user_id=user.pk, is_superuser=user.is_superuser):
        return HttpResponseForbidden("Payouts are for accountants.")
    found = await run_sync(payment_selectors.payouts_list)
    clearing = await run_sync(clearing_reconciliation)
    return render(request, "staff/payouts.html", {"payouts": found, "clearing": clearing, "user": user})
