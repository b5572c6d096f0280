"""`{{ amount|money:currency }}`: £54.99, €54.99, $54.99, or `54.99 CHF` for other currencies."""

from decimal import Decimal

from django import template

register = template.Library()

SYMBOLS = {"GBP": "£", "EUR": "€", "USD": "$"}


@register.filter
def money(amount, currency: str) -> str:
    if amount is None:
        return ""
    text = f"{Decimal(amount):.2f}"
    symbol = SYMBOLS.get(currency)
    return f"{symbol}{text}" if symbol else f"{text} {currency}"
