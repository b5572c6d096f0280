"""The agents' REST API's request and response bodies (docs/operations.md 5): their pydantic schemas, which the
OpenAPI document at /api/v1/openapi.json is built from."""

from decimal import Decimal
from typing import Annotated, Any

from ninja import Field, Schema
from pydantic import StringConstraints

from apps.bookings.models import Booking, FlightStatus
from apps.bookings.validation import MAX_VEHICLES

DATETIME_DOC = "ISO 8601 with an offset or Z; without one: the car park's local time"


class Error(Schema):
    error: str
    detail: Any = None


class CustomerIn(Schema):
    name: str = Field(min_length=1, max_length=200)
    email: str = Field("", max_length=254)
    phone: str = Field("", max_length=40)


class CustomerPatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=200)
    email: str | None = Field(None, max_length=254)
    phone: str | None = Field(None, max_length=40)


class VehicleIn(Schema):
    registration: str = Field(min_length=1, max_length=20, description="Any spacing/case: stored in normal form")
    make: str = Field("", max_length=40)
    model: str = Field("", max_length=40)
    colour: str = Field("", max_length=30)


class Flights(Schema):
    outbound: str = Field("", max_length=16)
    return_: str = Field("", max_length=16, alias="return")


class FlightsOut(Flights):
    """The return flight as the flight-status feed last reported it, once matched (docs/flight-status.md)."""

    return_estimated: str | None = Field(None, json_schema_extra={"format": "date-time"})
    return_status: str | None = Field(None, json_schema_extra={"enum": [*FlightStatus.Status.values, None]})


class FlightsPatch(Schema):
    outbound: str | None = Field(None, max_length=16)
    return_: str | None = Field(None, max_length=16, alias="return")


Price = Decimal | None


class BookingIn(Schema):
    agent_ref: Annotated[str, StringConstraints(strip_whitespace=True)] = Field(
        min_length=1, max_length=64, description="Your own reference, unique among yours (surrounding spaces dropped)"
    )
    carpark: str = Field(min_length=1, max_length=8)
    arrival: str = Field(max_length=64, description=DATETIME_DOC)
    departure: str = Field(max_length=64, description=DATETIME_DOC)
    customer: CustomerIn
    vehicles: list[VehicleIn] = Field(min_length=1, max_length=MAX_VEHICLES)
    flights: Flights | None = None
    price: Price = Field(None, ge=0, max_digits=10, decimal_places=2, description="Default: the tariff's price")
    commission: Price = Field(None, ge=0, max_digits=10, decimal_places=2, description="Default: your rate")


class BookingPatch(Schema):
    carpark: str | None = Field(None, min_length=1, max_length=8)
    arrival: str | None = Field(None, max_length=64, description=DATETIME_DOC)
    departure: str | None = Field(None, max_length=64, description=DATETIME_DOC)
    customer: CustomerPatch | None = None
    vehicles: list[VehicleIn] | None = Field(None, min_length=1, max_length=MAX_VEHICLES)
    flights: FlightsPatch | None = None
    price: Price = Field(None, ge=0, max_digits=10, decimal_places=2, description="Default: re-priced if moved")
    commission: Price = Field(None, ge=0, max_digits=10, decimal_places=2)


class CustomerOut(Schema):
    name: str
    email: str
    phone: str


class VehicleOut(Schema):
    registration: str
    make: str
    model: str
    colour: str


class BookingOut(Schema):
    reference: str
    agent_ref: str | None
    carpark: str
    status: str = Field(json_schema_extra={"enum": Booking.Status.values})
    arrival: str = Field(json_schema_extra={"format": "date-time"})
    departure: str = Field(json_schema_extra={"format": "date-time"})
    customer: CustomerOut
    vehicles: list[VehicleOut]
    flights: FlightsOut
    price: str = Field(pattern=r"^\d+\.\d{2}$")
    currency: str
    overbooked: bool
    created_at: str = Field(json_schema_extra={"format": "date-time"})
    updated_at: str = Field(json_schema_extra={"format": "date-time"})


class BookingPage(Schema):
    items: list[BookingOut]
    next: str | None = Field(description="URL of the next page, or null")


class AvailabilityOut(Schema):
    available: bool
    spaces_left: int
    price: str | None = Field(description="The tariff's price of the stay; null when the car park has no tariff")
    currency: str
    days: int


class CarParkOut(Schema):
    code: str
    name: str
    timezone: str
    currency: str


ERRORS = {code: Error for code in (400, 401, 403, 404, 409, 413, 422, 429)}
