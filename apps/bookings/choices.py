"""A website customer's choice of product, fare, extras and promo code, as the quote page's forms send it:
`choice` = "PRODUCT:FARE", `extra_<CODE>` = a quantity, `promo` = a code. The quote page shows its price breakdown
and the booking form sends it on (apps.bookings.views)."""

from dataclasses import dataclass, field

MAX_QUANTITY = 5


@dataclass(frozen=True)
class Choice:
    product: str | None = None
    fare: str | None = None
    extras: dict[str, int] = field(default_factory=dict)
    promo: str = ""

    @classmethod
    def from_data(cls, data, extra_codes) -> "Choice":
        product, _, fare = (data.get("choice") or "").partition(":")
        extras = {}
        for code in extra_codes:
            raw = (data.get(f"extra_{code}") or "").strip()
            quantity = int(raw) if raw.isdigit() else 0
            if quantity:
                extras[code] = min(quantity, MAX_QUANTITY)
        return cls(
            product.strip()[:16] or None, fare.strip()[:16] or None, extras, (data.get("promo") or "").strip()[:32]
        )

    @property
    def key(self) -> str:
        return f"{self.product}:{self.fare}" if self.product else ""

    def extras_list(self) -> list[dict]:
        return [{"code": code, "quantity": quantity} for code, quantity in self.extras.items()]
