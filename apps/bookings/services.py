"""Booking writes. Every booking, from the website, the API or an email, is made by these functions."""

import secrets
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction

from apps.agents.models import Agent
from apps.bookings.models import Booking, Customer, Vehicle
from apps.carparks.models import CarPark
from apps.core import plates

_REF_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"  # no 0/O, 1/I/L, U: easy to read out on the phone


def new_reference() -> str:
    return "PG-" + "".join(secrets.choice(_REF_ALPHABET) for _ in range(6))


def local_to_utc(carpark: CarPark, local: datetime) -> datetime:
    """A naive local time at the car park -> an aware UTC datetime."""
    if local.tzinfo is not None:
        return local
    return local.replace(tzinfo=carpark.tz)


def _vehicles(booking: Booking, registrations: list[str]) -> None:
    Vehicle.objects.filter(booking=booking).delete()
    Vehicle.objects.bulk_create(
        Vehicle(
            booking=booking,
            registration_raw=raw.strip(),
            registration=plates.normalise(raw),
            lookalike_key=plates.lookalike_key(raw),
        )
        for raw in registrations
        if plates.normalise(raw)
    )


def booking_create(
    *,
    carpark: CarPark,
    arrival: datetime,
    departure: datetime,
    customer_name: str,
    registrations: list[str],
    price: Decimal,
    source: str,
    customer_email: str = "",
    customer_phone: str = "",
    agent: Agent | None = None,
    agent_ref: str | None = None,
    brand=None,
    commission: Decimal | None = None,
    flight_outbound: str = "",
    flight_return: str = "",
) -> Booking:
    if departure <= arrival:
        raise ValueError("departure must be after arrival")
    if not any(plates.normalise(r) for r in registrations):
        raise ValueError("at least one vehicle registration is required")
    with transaction.atomic():
        customer = Customer.objects.create(name=customer_name, email=customer_email, phone=customer_phone)
        for _ in range(5):
            try:
                with transaction.atomic():
                    booking = Booking.objects.create(
                        reference=new_reference(),
                        carpark=carpark,
                        brand=brand,
                        agent=agent,
                        agent_ref=agent_ref,
                        customer=customer,
                        arrival=arrival,
                        departure=departure,
                        source=source,
                        price=price,
                        currency=carpark.currency,
                        commission=commission,
                        flight_outbound=flight_outbound,
                        flight_return=flight_return,
                    )
                break
            except IntegrityError:
                if agent_ref and Booking.objects.filter(agent=agent, agent_ref=agent_ref).exists():
                    raise
                continue  # reference collision: draw again
        _vehicles(booking, registrations)
    return booking


def booking_apply_from_agent(*, agent: Agent, action: str, agent_ref: str, **fields) -> Booking:
    """Apply one booking action from an agent's email (email-ingress.md 2)."""
    existing = Booking.objects.select_for_update().filter(agent=agent, agent_ref=agent_ref).first()
    if action == "cancel":
        if existing is None:
            raise ValueError(f"no booking {agent_ref}")
        existing.status = Booking.Status.CANCELLED
        existing.save(update_fields=["status", "updated_at"])
        return existing
    carpark = CarPark.objects.filter(code=fields["carpark_code"].strip().upper()).first()
    if carpark is None:
        raise ValueError(f"unknown car park {fields['carpark_code']!r}")
    if not agent.carparks.filter(pk=carpark.pk).exists():
        raise ValueError(f"agent {agent.code} is not contracted for {carpark.code}")
    arrival = local_to_utc(carpark, fields["arrival_local"])
    departure = local_to_utc(carpark, fields["departure_local"])
    price = fields.get("price") or Decimal("0.00")
    if existing is None:
        return booking_create(
            carpark=carpark,
            arrival=arrival,
            departure=departure,
            customer_name=fields["customer_name"],
            customer_email=fields.get("customer_email", ""),
            customer_phone=fields.get("customer_phone", ""),
            registrations=fields["registrations"],
            price=price,
            commission=fields.get("commission"),
            source=Booking.Source.EMAIL,
            agent=agent,
            agent_ref=agent_ref,
            flight_outbound=fields.get("flight_outbound", ""),
            flight_return=fields.get("flight_return", ""),
        )
    existing.carpark, existing.arrival, existing.departure, existing.price = carpark, arrival, departure, price
    existing.commission = fields.get("commission")
    existing.save()
    Customer.objects.filter(pk=existing.customer_id).update(
        name=fields["customer_name"], email=fields.get("customer_email", ""), phone=fields.get("customer_phone", "")
    )
    _vehicles(existing, fields["registrations"])
    return existing
