"""What the product services refuse; apps.bookings turns them into its own refusals (422 / 409) for each edge."""


class UnknownChoice(ValueError):
    """A product, fare or extra that is not on sale here; `allowed` lists what is."""

    def __init__(self, field: str, value, allowed: list[str]):
        self.field, self.value, self.allowed = field, value, allowed
        options = ", ".join(allowed) if allowed else "none"
        super().__init__(f"unknown {field} {value!r}: one of {options}")


class PromoRefused(ValueError):
    """A promo code that does not apply, and why in a customer's words."""

    field = "promo_code"


class CalendarConflict(ValueError):
    """A price calendar range that overlaps another of the same product, brand and channel (named)."""
