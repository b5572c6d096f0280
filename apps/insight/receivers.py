"""Insight's answers to the lower apps' questions: the overbooking allowances staff accepted, which the products'
allocation counts as spaces a channel may sell beyond its limits (apps.products.holds.allowances)."""

from apps.insight.overbooking import overbooking_allowances
from apps.products import signals as product_signals


def on_allocation_allowances(sender, carpark_id: int, channel: str, dates: list, **kwargs) -> dict:
    accepted = overbooking_allowances(carpark_id=carpark_id, start=dates[0], end=dates[-1])
    return {day: spaces for (day, ch), spaces in accepted.items() if ch == channel and spaces > 0}


def connect() -> None:
    product_signals.allocation_allowances.connect(on_allocation_allowances, dispatch_uid="insight.allowances")
