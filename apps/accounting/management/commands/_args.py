"""Argument types shared by the accounting commands: a malformed value is a command-line error (exit status 2)."""

import argparse
from datetime import date


def month_arg(value: str) -> date:
    """YYYY-MM -> the month's first day."""
    try:
        year, month = value.split("-")
        if len(year) != 4 or len(month) != 2:
            raise ValueError
        return date(int(year), int(month), 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a month (YYYY-MM)") from None


def date_arg(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def quarter_arg(value: str) -> tuple[date, date]:
    """YYYY-Qn -> the quarter's first and last day."""
    from apps.accounting.vat import quarter_parse

    try:
        return quarter_parse(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a quarter (YYYY-Qn)") from None
