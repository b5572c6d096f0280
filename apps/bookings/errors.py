"""What the booking services refuse, as exceptions the site, the API and email each answer in their own way."""

from apps.carparks.models import CarPark


class BookingInvalid(ValueError):
    """Bad input for a booking; the message says what, in words a customer or an agent understands."""

    code = "invalid"

    def __init__(self, message: str = "", field: str | None = None, allowed: list[str] | None = None):
        super().__init__(message)
        self.field = field  # the input it is about, by its API name (`arrival`, `commission`), when it is one
        self.allowed = allowed  # the values it may take, when they are few (products, fares, extras)


class NotContracted(BookingInvalid):
    code = "not_contracted"


class NoCapacity(Exception):
    """A day of the stay is full. `dates` are the full local dates."""

    code = "no_capacity"

    def __init__(self, carpark: CarPark, dates: list):
        self.carpark, self.dates = carpark, dates
        days = ", ".join(d.strftime("%a %d %b %Y") for d in dates)
        super().__init__(f"{carpark.name} is full on {days}")


class ProductNoCapacity(NoCapacity):
    """A product (not the whole car park) has no space for the seller on some day: full, its channel's share used
    up, or stopped from sale."""

    def __init__(self, carpark: CarPark, product, dates: list, why: str = "full"):
        self.carpark, self.dates, self.product = carpark, dates, product
        days = ", ".join(d.strftime("%a %d %b %Y") for d in dates)
        Exception.__init__(self, f"{product.name} ({product.code}) at {carpark.name} is {why} on {days}")


class DuplicateAgentRef(Exception):
    code = "duplicate_agent_ref"


class BookingClosed(Exception):
    """The booking can no longer be changed (it has arrived or left). `code` is `already_arrived`."""

    code = "already_arrived"
