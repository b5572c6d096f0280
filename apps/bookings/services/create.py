"""booking_create: a new booking from the website, the API, an email or staff, in one transaction."""

from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.agents.models import Agent
from apps.bookings import capacity, flights, sale, signals
from apps.bookings.errors import (
    BookingInvalid,
    DuplicateAgentRef,
    NoCapacity,
)
from apps.bookings.models import Booking, BookingFormToken, Customer
from apps.bookings.services.common import (
    _replace_vehicles,
    _stay,
    _violated_constraint,
    booking_changes_publish,
    new_reference,
    remember_related,
)
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
    stay = _stay(carpark, arrival, departure, sold.stay.allowance)
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
        remember_related(booking, "extras", sale.record_extras(booking, sold, new=True))
        remember_related(booking, "vehicles", _replace_vehicles(booking, vehicles, new=True))
        signals.booking_created.send(sender=Booking, booking=booking)
        booking_changes_publish(bookings=[booking])
    return booking
