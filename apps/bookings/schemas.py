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


class ExtraIn(Schema):
    code: str = Field(min_length=1, max_length=16, description="An extra of the car park, e.g. EV")
    quantity: int = Field(1, ge=1, le=20)


class ExtraOut(Schema):
    code: str
    quantity: int
    price: str = Field(pattern=r"^\d+\.\d{2}$")


PRODUCT_DOC = "A product code you sell, e.g. PR; default: your default product (else the car park's)"
FARE_DOC = "A fare of the product, e.g. flex or saver; default: your default fare (else the product's first)"


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
    product: str | None = Field(None, min_length=1, max_length=16, description=PRODUCT_DOC)
    fare: str | None = Field(None, min_length=1, max_length=16, description=FARE_DOC)
    extras: list[ExtraIn] | None = Field(None, max_length=10)


class BookingPatch(Schema):
    carpark: str | None = Field(None, min_length=1, max_length=8)
    arrival: str | None = Field(None, max_length=64, description=DATETIME_DOC)
    departure: str | None = Field(None, max_length=64, description=DATETIME_DOC)
    customer: CustomerPatch | None = None
    vehicles: list[VehicleIn] | None = Field(None, min_length=1, max_length=MAX_VEHICLES)
    flights: FlightsPatch | None = None
    price: Price = Field(None, ge=0, max_digits=10, decimal_places=2, description="Default: re-priced if moved")
    commission: Price = Field(None, ge=0, max_digits=10, decimal_places=2)
    product: str | None = Field(None, min_length=1, max_length=16, description="Another product you sell")
    fare: str | None = Field(None, min_length=1, max_length=16, description="Another fare of the product")
    extras: list[ExtraIn] | None = Field(None, max_length=10, description="Replaces the booking's extras")


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
    product: str | None = Field(description="The product's code (null: booked before products)")
    fare: str | None
    extras: list[ExtraOut]
    price: str = Field(pattern=r"^\d+\.\d{2}$")
    currency: str
    overbooked: bool
    created_at: str = Field(json_schema_extra={"format": "date-time"})
    updated_at: str = Field(json_schema_extra={"format": "date-time"})


class AmendmentOut(Schema):
    previous_price: str
    price: str
    price_difference: str = Field(description="price - previous_price; the fee is part of it")
    fee: str = Field(description="The fare's amend fee charged for new dates, car park or product")


class BookingAmended(BookingOut):
    amendment: AmendmentOut


class BookingPage(Schema):
    items: list[BookingOut]
    next: str | None = Field(description="URL of the next page, or null")


class FareQuoteOut(Schema):
    code: str
    price: str | None = Field(description="The stay's price with this fare; null when it has no price")
    refundable: bool


class ProductQuoteOut(Schema):
    code: str
    name: str
    spaces_left: int = Field(description="For you: the product's spaces, within your share of them")
    fares: list[FareQuoteOut]


class AvailabilityOut(Schema):
    available: bool = Field(description="Top-level fields: your default product and fare")
    spaces_left: int
    price: str | None = Field(description="The stay's price; null when the car park has no tariff")
    currency: str
    days: int
    products: list[ProductQuoteOut] = Field(description="Each product you may sell here")


class CarParkOut(Schema):
    code: str
    name: str
    timezone: str
    currency: str


ERRORS = {code: Error for code in (400, 401, 403, 404, 409, 413, 422, 429)}
