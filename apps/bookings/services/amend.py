"""booking_amend: a confirmed booking changed (dates, car park, product, fare, extras, people, flights)."""

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from apps.bookings import flights, sale, signals, terms
from apps.bookings.errors import (
    BookingClosed,
    BookingInvalid,
)
from apps.bookings.models import Booking, Customer
from apps.bookings.services.common import (
    _replace_vehicles,
    _stay,
    _take_holds,
    booking_changes_publish,
)
from apps.bookings.validation import (
    agent_price,
    check_seller,
    check_times,
    clean_email,
    clean_money,
    clean_vehicles,
    commission_checked,
    text_field,
)

_AMENDABLE = {
    "carpark",
    "arrival",
    "departure",
    "customer_name",
    "customer_email",
    "customer_phone",
    "vehicles",
    "price",
    "commission",
    "flight_outbound",
    "flight_return",
    "product",
    "fare",
    "extras",
}


def booking_amend(
    *, booking: Booking, allow_overbooking: bool = False, correct_out_of_terms: bool = False, **changes
) -> Booking:
    """Change a confirmed booking. New days are capacity-checked; new dates, car park, product, fare or extras
    re-price it (plus the fare's amend fee for new dates, car park or product) unless a `price` is given; a new
    price re-computes an agent's commission unless `commission` is given. A given price or commission is held to
    the agent's terms as in booking_create. The booking returned carries `amendment` (apps.bookings.sale.Amendment):
    the price before and after, their difference and the fee in it."""
    unknown = set(changes) - _AMENDABLE
    if unknown:
        raise BookingInvalid(f"cannot change {', '.join(sorted(unknown))}")
    with transaction.atomic():
        current = Booking.objects.select_for_update(of=("self",))
        current = current.select_related("carpark", "customer", "agent", "product", "fare", "promo").get(pk=booking.pk)
        if current.status == Booking.Status.CANCELLED:
            raise BookingInvalid("a cancelled booking cannot be changed")
        if current.status != Booking.Status.CONFIRMED:
            raise BookingClosed(f"booking {current.reference} has already arrived")
        previous_price, previous_commission = current.price, current.commission
        moved_from = current.carpark_id
        carpark = changes.get("carpark") or current.carpark
        arrival = changes.get("arrival") or current.arrival
        departure = changes.get("departure") or current.departure
        check_times(arrival, departure)
        moved = (carpark.pk, arrival, departure) != (current.carpark_id, current.arrival, current.departure)
        if carpark.pk != current.carpark_id:
            check_seller(carpark, current.agent, current.brand)
        same_carpark = carpark.pk == current.carpark_id and current.product is not None
        what = {
            "product": changes.get("product") or (current.product.code if same_carpark else None),
            "fare": changes.get("fare") or (current.fare.code if same_carpark and current.fare else None),
            "extras": changes["extras"]
            if "extras" in changes
            else [{"code": e.extra.code, "quantity": e.quantity} for e in current.extras.select_related("extra")]
            if same_carpark
            else [],
        }
        sold = sale.sale_for(
            carpark=carpark,
            brand=current.brand,
            agent=current.agent,
            arrival=arrival,
            departure=departure,
            at=timezone.now(),
            kept_promo=current.promo,
            new_sale=moved or bool(changes.get("product")),
            **what,
        )
        resold = moved or sold.product.pk != current.product_id or sold.fare != current.fare or "extras" in changes
        fee = sale.amend_fee(current, sold, moved=moved)
        notes: list[str] = []
        if changes.get("price") is not None:
            quoted = sold.breakdown.total + fee if sold.breakdown else None
            stated = clean_money(changes["price"], "price")
            current.price = agent_price(current.agent, stated, notes, correct=correct_out_of_terms, reference=quoted)
        elif resold:
            if sold.breakdown is None:
                raise BookingInvalid(f"{carpark.code} has no tariff: give a price")
            current.price = sold.breakdown.total + fee
        if "commission" in changes:
            current.commission = commission_checked(
                changes["commission"], current.agent, current.price, correct=correct_out_of_terms, notes=notes
            )
        elif current.price != previous_price and current.agent is not None:
            current.commission = commission_checked(None, current.agent, current.price)
        if resold:
            old = _stay(current.carpark, current.arrival, current.departure)
            new = _stay(carpark, arrival, departure, sold.stay.allowance)
            kept = old.keys() & new.keys()
            overbooked_now = _take_holds(carpark, old, new, allow_overbooking)
            old_extras = sale.booked_extra_days(current, old.dates)
            overbooked_now = (
                sale.take(
                    old=sale.held_stay(current), new=sold, allow_overbooking=allow_overbooking, old_extras=old_extras
                )
                or overbooked_now
            )
            current.overbooked = overbooked_now or (current.overbooked and bool(kept))
            sale.record(current, sold)
            sale.record_extras(current, sold)
        terms.flag_for_review(current, notes)
        current.carpark, current.arrival, current.departure = carpark, arrival, departure
        current.currency = carpark.currency
        for flight in ("flight_outbound", "flight_return"):
            if flight in changes:
                setattr(current, flight, text_field(changes[flight], flight.replace("_", " "), 16).upper())
        flight_fields = ("flight_return_key", "return_status", "return_estimated", "return_ready_at")
        if moved or "flight_return" in changes:  # the return flight is matched again (another flight or date)
            found = flights.booking_flight_fields(
                carpark=carpark, flight_return=current.flight_return, departure=departure
            )
            for field in flight_fields:
                setattr(current, field, found[field])
        _amend_customer(current.customer, changes)
        if "vehicles" in changes:
            _replace_vehicles(current, clean_vehicles(changes["vehicles"]))
        current.save()
        signals.booking_amended.send(
            sender=Booking, booking=current, previous_price=previous_price, previous_commission=previous_commission
        )
        booking_changes_publish(booking_ids=[current.pk], also_to_carpark_id=moved_from)
    current.amendment = sale.Amendment(previous_price, current.price, fee if resold else Decimal("0"))
    return current


class _TriedOnly(Exception):
    def __init__(self, amendment: sale.Amendment):
        super().__init__("rolled back")
        self.amendment = amendment


def booking_amend_quote(*, booking: Booking, **changes) -> sale.Amendment:
    """What booking_amend would make of these changes (the price before and after, the fee), without making them:
    the amendment is tried in full (spaces, extras' stock, promo, price) and rolled back, so what is quoted is what
    booking_amend itself decides, and its refusals (NoCapacity, BookingInvalid naming the field, BookingClosed)
    come before the customer pays. A quote, not a hold: booking_amend checks again when it is made."""
    try:
        with transaction.atomic():
            raise _TriedOnly(booking_amend(booking=booking, **changes).amendment)
    except _TriedOnly as tried:
        return tried.amendment


def _amend_customer(customer: Customer, changes: dict) -> None:
    updates = {}
    if "customer_name" in changes:
        updates["name"] = text_field(changes["customer_name"], "customer name", 200, required=True)
    if "customer_email" in changes:
        updates["email"] = clean_email(changes["customer_email"])
    if "customer_phone" in changes:
        updates["phone"] = text_field(changes["customer_phone"], "phone", 40)
    if updates:
        for field, value in updates.items():
            setattr(customer, field, value)
        customer.save(update_fields=list(updates))
