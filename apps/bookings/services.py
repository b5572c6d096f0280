"""Booking writes. Every booking, from the website, the API or an email, is made by these functions.

Each owns its transaction: capacity holds (apps.bookings.capacity), the booking rows and the domain signals
(apps.bookings.signals, where the ledger posts) commit or roll back together. docs/contracts-internal.md is the
contract for the signatures and exceptions.
"""

import secrets
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.agents.models import Agent
from apps.bookings import capacity, flights, sale, signals, terms
from apps.bookings.cancellation import cancellation_fee
from apps.bookings.capacity import Stay
from apps.bookings.errors import (
    BookingClosed,
    BookingInvalid,
    DuplicateAgentRef,
    NoCapacity,
)
from apps.bookings.localtime import localize
from apps.bookings.models import Booking, BookingFormToken, Customer, Vehicle
from apps.bookings.pricing import stay_dates
from apps.bookings.selectors import booking_events_data
from apps.bookings.validation import (
    VehicleInput,
    agent_price,
    check_seller,
    check_times,
    clean_email,
    clean_money,
    clean_vehicles,
    commission_checked,
    text_field,
)
from apps.carparks.models import Brand, CarPark
from apps.core import events, plates

_REF_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"  # no 0/O, 1/I/L, U: easy to read out on the phone


def new_reference() -> str:
    return "PG-" + "".join(secrets.choice(_REF_ALPHABET) for _ in range(6))


def local_to_utc(carpark: CarPark, local: datetime) -> datetime:
    """A naive local time at the car park -> an aware UTC datetime (aware ones are returned as they are).

    Raises LocalTimeError (a ValueError) for a time that does not exist or is ambiguous across a clock change.
    """
    if local.tzinfo is not None:
        return local
    return localize(local, carpark.tz)


def _stay(carpark: CarPark, arrival: datetime, departure: datetime) -> Stay:
    return Stay(carpark.pk, carpark.capacity, tuple(stay_dates(arrival=arrival, departure=departure, tz=carpark.tz)))


def _take_holds(carpark: CarPark, old: Stay | None, new: Stay, allow_overbooking: bool) -> bool:
    """Move the holds; True when some day was taken although full (overbooking allowed)."""
    try:
        return bool(capacity.move_holds(old=old, new=new, allow_overbooking=allow_overbooking))
    except capacity.DaysFull as full:
        raise NoCapacity(carpark, full.dates) from None


def _replace_vehicles(booking: Booking, vehicles: list[VehicleInput], *, new: bool = False) -> None:
    if not new:
        Vehicle.objects.filter(booking=booking).delete()
    Vehicle.objects.bulk_create(
        Vehicle(
            booking=booking,
            registration_raw=v.raw,
            registration=v.registration,
            lookalike_key=plates.lookalike_key(v.registration),
            make=v.make,
            model=v.model,
            colour=v.colour,
        )
        for v in vehicles
    )


def _violated_constraint(exc: IntegrityError) -> str | None:
    return getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None)


# --- the services --------------------------------------------------------------------------------------------


def booking_create(
    *,
    carpark: CarPark,
    arrival: datetime,
    departure: datetime,
    customer_name: str,
    vehicles: list[dict],
    source: str,
    price: Decimal | None = None,
    customer_email: str = "",
    customer_phone: str = "",
    agent: Agent | None = None,
    agent_ref: str | None = None,
    brand: Brand | None = None,
    commission: Decimal | None = None,
    flight_outbound: str = "",
    flight_return: str = "",
    meet_and_greet: bool = False,
    allow_overbooking: bool = False,
    correct_out_of_terms: bool = False,
    form_token: str | None = None,
    pending_payment: bool = False,
    product: str | None = None,
    fare: str | None = None,
    extras: list[dict] | None = None,
    promo_code: str = "",
) -> Booking:
    """Make a booking, holding a space on each of its days. See docs/contracts-internal.md.

    An agent's price and commission beyond its terms (apps.bookings.terms) are refused (BookingInvalid naming the
    field), or with `correct_out_of_terms` (email) recorded as the tariff's / contracted ones and flagged.
    `form_token`: a website form's one-time token; sent again, it gets the booking it made (BookingFormToken).
    `pending_payment`: a website booking paid by card: it holds its spaces as `pending_payment` until paid or
    `carpark.payment_window_min` has passed (apps.bookings.prepaid). Never for an agent's booking.
    `product`, `fare`, `extras` ([{"code", "quantity"}]), `promo_code`: what is sold (apps.bookings.sale); the
    price, unless an agent states one, is the product's (apps.products.pricing), with its breakdown recorded.
    """
    if pending_payment and agent is not None:
        raise BookingInvalid("an agent's booking is paid by invoice, never pending a card payment")
    check_times(arrival, departure)
    name = text_field(customer_name, "customer name", 200, required=True)
    email, phone = clean_email(customer_email), text_field(customer_phone, "phone", 40)
    cleaned_vehicles = clean_vehicles(vehicles)
    agent_ref = text_field(agent_ref, "agent reference", 64) or None
    if agent_ref and agent is None:
        raise BookingInvalid("an agent reference needs an agent")
    if source not in Booking.Source.values:
        raise BookingInvalid(f"unknown source {source!r}")
    check_seller(carpark, agent, brand)
    what = {"product": product, "fare": fare, "extras": extras, "promo_code": promo_code}
    sold = sale.sale_for(
        carpark=carpark, brand=brand, agent=agent, arrival=arrival, departure=departure, at=timezone.now(), **what
    )
    quoted = sold.breakdown.total if sold.breakdown else None
    notes: list[str] = []
    stated = clean_money(price, "price")
    if stated is not None:
        amount = agent_price(agent, stated, notes, correct=correct_out_of_terms, reference=quoted)
    elif quoted is None:
        raise BookingInvalid(f"{carpark.code} has no tariff: give a price")
    else:
        amount = quoted
    fields = {
        "carpark": carpark,
        "brand": brand,
        "agent": agent,
        "agent_ref": agent_ref,
        "arrival": arrival,
        "departure": departure,
        "source": source,
        "price": amount,
        "currency": carpark.currency,
        "commission": commission_checked(commission, agent, amount, correct=correct_out_of_terms, notes=notes),
        "needs_review": bool(notes),
        "review_note": "\n".join(notes),
        "flight_outbound": text_field(flight_outbound, "outbound flight", 16).upper(),
        "flight_return": text_field(flight_return, "return flight", 16).upper(),
        "meet_and_greet": bool(meet_and_greet),
    }
    if pending_payment:
        fields["status"] = Booking.Status.PENDING_PAYMENT
        fields["payment_due_by"] = timezone.now() + timedelta(minutes=carpark.payment_window_min)
    fields.update(
        flights.booking_flight_fields(carpark=carpark, flight_return=fields["flight_return"], departure=departure)
    )
    stay = _stay(carpark, arrival, departure)
    customer = {"name": name, "email": email, "phone": phone}
    if form_token:
        insert = partial(
            _insert_with_new_reference, fields, customer, cleaned_vehicles, (stay, sold), allow_overbooking
        )
        return _once_per_form_token(form_token, email, insert)
    return _insert_with_new_reference(fields, customer, cleaned_vehicles, (stay, sold), allow_overbooking)


def _insert_with_new_reference(fields: dict, customer: dict, vehicles: list[VehicleInput], stay: tuple, overbook: bool):
    agent, agent_ref = fields["agent"], fields["agent_ref"]
    for _ in range(8):  # a new random reference on the (rare) collision
        try:
            return _insert_booking(fields, customer, vehicles, stay, overbook)
        except IntegrityError as exc:
            constraint = _violated_constraint(exc)
            if constraint == "booking_agent_ref_unique" or (
                constraint is None and agent_ref and Booking.objects.filter(agent=agent, agent_ref=agent_ref).exists()
            ):
                raise DuplicateAgentRef(f"agent reference {agent_ref} is already used") from None
            if constraint not in (None, "bookings_booking_reference_key"):
                raise
    raise RuntimeError("could not draw a free booking reference")


def _once_per_form_token(token: str, email: str, insert) -> Booking:
    """The booking made under a website form's token: made now by `insert()`, or the one an earlier sending made.

    The token's row goes in first, so a sending at the same moment waits on its unique index (not on a capacity day,
    where it could find the car park full of its own booking) and then gets that booking. Only the email the form
    was first sent with gets it: the token alone does not reveal someone else's booking.
    """
    with transaction.atomic():
        claim, new = BookingFormToken.objects.get_or_create(token=token)
        if new:
            claim.booking = insert()
            claim.save(update_fields=["booking"])
            return claim.booking
    booking = Booking.objects.select_related("customer").get(pk=claim.booking_id)
    if booking.customer.email.casefold() != email.casefold():
        raise BookingInvalid("This booking form has already been used. Please search again to make another booking.")
    return booking


def _insert_booking(fields: dict, customer: dict, vehicles: list[VehicleInput], stays: tuple, allow_overbooking: bool):
    """One attempt, in one transaction (a savepoint when nested): holds (the car park's days, then the product's
    and extras'), rows, signals. The unique constraints catch a duplicate agent reference or reference
    (IntegrityError), with no look-up beforehand."""
    stay, sold = stays
    with transaction.atomic():
        try:
            full = capacity.take_new(stay=stay, allow_overbooking=allow_overbooking)
        except capacity.DaysFull as exc:
            raise NoCapacity(fields["carpark"], exc.dates) from None
        full = sale.take(old=None, new=sold, allow_overbooking=allow_overbooking) or bool(full)
        owner = Customer.objects.create(**customer)
        booking = Booking(reference=new_reference(), customer=owner, overbooked=full, **fields)
        sale.record(booking, sold)
        booking.save(force_insert=True)
        sale.record_extras(booking, sold, new=True)
        _replace_vehicles(booking, vehicles, new=True)
        signals.booking_created.send(sender=Booking, booking=booking)
        booking_changes_publish(booking_ids=[booking.pk])
    return booking


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
            new = _stay(carpark, arrival, departure)
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


def booking_cancel(*, booking: Booking) -> Booking:
    """Cancel a booking and free its days. A repeated cancel changes nothing; after arrival: BookingClosed.
    A website booking cancelled inside its car park's cut-off keeps the cancellation fee (apps.bookings.cancellation),
    which the ledger keeps as sold; what was paid beyond it is refunded (apps.payments, on booking_cancelled)."""
    with transaction.atomic():
        current = Booking.objects.select_for_update(of=("self",)).select_related("carpark", "agent").get(pk=booking.pk)
        if current.status in (Booking.Status.CANCELLED, Booking.Status.EXPIRED):
            return current
        if current.status in (Booking.Status.ARRIVED, Booking.Status.DEPARTED):
            raise BookingClosed(f"booking {current.reference} has already arrived")
        previous_status = current.status
        capacity.move_holds(old=_stay(current.carpark, current.arrival, current.departure), new=None)
        sale.release(current)
        current.status = Booking.Status.CANCELLED
        fee = cancellation_fee(current) if previous_status == Booking.Status.CONFIRMED else None
        current.cancellation_fee = fee or None
        current.save(update_fields=["status", "cancellation_fee", "updated_at"])
        signals.booking_cancelled.send(sender=Booking, booking=current, previous_status=previous_status)
        booking_changes_publish(booking_ids=[current.pk])
    return current


def booking_changes_publish(*, booking_ids: list[int], also_to_carpark_id: int | None = None) -> None:
    """Tell the staff dashboards (after commit) what these bookings are now: their arrivals and departures today
    follow new, moved, cancelled and no-show bookings. `also_to_carpark_id`: a car park the booking moved away from
    (the event names the new one, so its dashboards drop it)."""
    for data in booking_events_data(booking_ids=booking_ids):
        for carpark_id in {data.pop("carpark_id"), also_to_carpark_id} - {None}:
            events.publish_to_carpark(carpark_id=carpark_id, kind="booking", data=data)


def booking_mark_confirmation_sent(*, booking_id: int) -> bool:
    """Record that the confirmation email went out; False when it already had (the job ran twice)."""
    return bool(
        Booking.objects.filter(pk=booking_id, confirmation_sent_at__isnull=True).update(
            confirmation_sent_at=timezone.now()
        )
    )
