"""Overstays paid by card. Policy `hold`: the exit read's alert carries a pay link (`/pay/<token>`) that the lane's
display shows as a QR code; once paid the server opens the barrier by itself (apps.access barrier_open_paid, reason
`paid`) and the visit closes. Policy `open_and_flag`: the car has left; the customer is emailed the pay link.

A pay link names one overstay (one visit) and nothing else; its token is the only key to it.
"""

import hashlib
import secrets
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from apps.access.models import Alert, Visit
from apps.access.selectors import alert_event_data
from apps.access.services import barrier_open_paid
from apps.accounting.models import OverstayCharge
from apps.accounting.services import carpark_rates, overstay_charge_compute
from apps.carparks.models import Brand, CarPark, Lane
from apps.carparks.selectors import carpark_brand
from apps.core import events
from apps.payments.models import LaneDisplay, OverstayPayLink, Payment
from apps.payments.providers import provider_name
from apps.payments.services.common import PaymentNotDue
from apps.payments.services.intents import _create_intent


def pay_path(link: OverstayPayLink) -> str:
    return f"/pay/{link.token}"


def pay_url(link: OverstayPayLink, brand: Brand | None = None) -> str:
    """Absolute on the booking's brand site when it has one, else on `brand` (an agent's booking: its car park's,
    which pay_url_for_visit looks up); emails and QR codes leave the request behind; the page answers on any host."""
    brand = link.booking.brand or brand
    return brand.link(pay_path(link)) if brand is not None and brand.base_url else pay_path(link)


def _new_link(visit: Visit, lane: Lane | None, amount: Decimal) -> OverstayPayLink:
    return OverstayPayLink.objects.create(
        token=secrets.token_urlsafe(24),
        visit=visit,
        lane=lane,
        booking=visit.booking,
        amount=amount,
        currency=visit.booking.currency,
    )


def pay_link_for_held(*, visit_id: int, lane: Lane, alert: Alert | None) -> OverstayPayLink | None:
    """A visit just held at an exit for overstay (inside the decision's transaction): its pay link, priced as it
    presented at the exit; the exit read's alert names it (and is sent to the dashboards again with it)."""
    visit = Visit.objects.select_related("booking__carpark", "booking__brand").get(pk=visit_id)
    if visit.booking is None or visit.held_at is None:
        return None
    existing = OverstayPayLink.objects.filter(visit=visit, paid_at__isnull=True).first()
    if existing is None:
        rates = carpark_rates(visit.booking.carpark_id)
        quote = overstay_charge_compute(
            departure=visit.booking.due_out,  # the later of the booked departure and the flight's landing
            exited_at=visit.held_at,
            grace_min=visit.booking.carpark.grace_min,
            rate=rates.overstay_rate,
            unit=rates.overstay_unit,
        )
        if quote.amount <= 0:
            return None
        existing = _new_link(visit, lane, quote.amount)
        events.publish_to_lane(lane_id=lane.pk, kind="overstay_held", data={})  # its display shows the QR code
    if alert is not None:
        alert.detail = f"pay {existing.amount} {existing.currency}: {pay_path(existing)}"[:200]
        alert.save(update_fields=["detail"])
        alert = Alert.objects.select_related("carpark", "lane", "acknowledged_by").get(pk=alert.pk)
        events.publish_to_carpark(carpark_id=alert.carpark_id, kind="alert", data=alert_event_data(alert))
    return existing


def pay_link_for_flagged(*, visit: Visit) -> OverstayPayLink | None:
    """An overstay charged as the car left (`open_and_flag`): its pay link, which the customer's overstay message
    carries (apps.customers, the one way customers are written to)."""
    charge = OverstayCharge.objects.filter(visit_id=visit.pk).first()
    if charge is None or visit.booking is None or OverstayPayLink.objects.filter(visit=visit).exists():
        return None
    return _new_link(visit, visit.exit_lane, charge.amount)


def pay_url_for_visit(visit_id: int) -> str | None:
    """The unpaid pay link of a visit's overstay, absolute on its brand's site (None: there is none)."""
    link = OverstayPayLink.objects.select_related("booking__brand").filter(visit_id=visit_id, paid_at=None).first()
    if link is None:
        return None
    return pay_url(link, None if link.booking.brand_id else carpark_brand(carpark_id=link.booking.carpark_id))


def payment_start_overstay(*, token: str) -> tuple[OverstayPayLink, Payment]:
    """The payment of a pay link: its open intent, or a new one for the overstay's amount."""
    link = OverstayPayLink.objects.select_related("booking__carpark", "booking__brand", "payment").get(token=token)
    if link.paid_at is not None:
        raise PaymentNotDue("this overstay has been paid")
    if link.payment is not None and link.payment.status == Payment.Status.PENDING and link.payment.intent_id:
        return link, link.payment
    payment = Payment.objects.create(
        booking=link.booking,
        provider=provider_name(),
        amount=link.amount,
        currency=link.currency,
        purpose=Payment.Purpose.OVERSTAY,
    )
    OverstayPayLink.objects.filter(pk=link.pk).update(payment=payment)
    return link, _create_intent(payment, metadata={"booking": link.booking.reference, "purpose": "overstay"})


def overstay_paid(payment: Payment) -> None:
    """Inside the payment's transaction: the link is settled; a held car is let out (barrier opened by the server,
    the visit closed and its overstay charged as it presented at the exit, which is what was paid)."""
    link = OverstayPayLink.objects.select_for_update().filter(payment=payment).first()
    if link is None or link.paid_at is not None:
        return
    link.paid_at = timezone.now()
    link.save(update_fields=["paid_at"])
    barrier_open_paid(visit_id=link.visit_id)
    if link.lane_id is not None:
        events.publish_to_lane(lane_id=link.lane_id, kind="overstay_paid", data={})


# --- lane displays ----------------------------------------------------------------------------------------------


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def lane_display_issue(*, carpark_code: str, lane_code: str) -> tuple[Lane, str]:
    """A display token for a lane's screen: returned once, kept as a hash (like a lane controller's token)."""
    carpark = CarPark.objects.get(code=carpark_code.upper())
    lane = Lane.objects.get(carpark=carpark, code=lane_code)
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        LaneDisplay.objects.create(lane=lane, token_hash=_hash(token))
    return lane, token


def lane_display_allowed(*, lane_id: int, token: str) -> bool:
    if not token:
        return False
    return LaneDisplay.objects.filter(lane_id=lane_id, token_hash=_hash(token), revoked_at__isnull=True).exists()


def lane_display_link(*, lane_id: int) -> OverstayPayLink | None:
    """The pay link to show at a lane: the newest unpaid one of a visit still held there."""
    return (
        OverstayPayLink.objects.filter(lane_id=lane_id, paid_at__isnull=True, visit__held_at__isnull=False)
        .filter(visit__exited_at__isnull=True, visit__exit_lane_id=lane_id)
        .select_related("booking__brand", "visit")
        .order_by("-created_at")
        .first()
    )
