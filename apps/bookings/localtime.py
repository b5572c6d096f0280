"""Wall-clock times at a car park <-> aware UTC datetimes, refusing times a clock change makes meaningless.

On the spring-forward night 01:30 does not exist in Europe/London; on the fall-back night 01:30 happens twice.
Silently picking one would move a customer's booking by an hour, so both are refused with a clear reason.
"""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo


class LocalTimeError(ValueError):
    """`code` is `nonexistent_local_time`, `ambiguous_local_time` or `invalid_datetime`."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def both_times(naive: datetime, tz: ZoneInfo) -> tuple[datetime, datetime] | None:
    """The two aware times (earlier, later) a wall-clock time at `tz` names as the clocks go back over it, or None."""
    first, second = naive.replace(tzinfo=tz, fold=0), naive.replace(tzinfo=tz, fold=1)
    if first.utcoffset() == second.utcoffset() or first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        return None
    return first, second


def localize(naive: datetime, tz: ZoneInfo, fold: int | None = None) -> datetime:
    """A naive wall-clock time at `tz` -> an aware UTC datetime; LocalTimeError if it does not exist, or if it is
    ambiguous and `fold` (0: the earlier of its two times, 1: the later) does not say which."""
    first, second = naive.replace(tzinfo=tz, fold=0), naive.replace(tzinfo=tz, fold=1)
    try:
        utc = first.astimezone(UTC)
    except OverflowError:  # within a day of year 1 or 9999: no such instant in UTC
        raise LocalTimeError("invalid_datetime", f"{naive.isoformat()} is out of range") from None
    if first.utcoffset() != second.utcoffset():
        round_trip = utc.astimezone(tz).replace(tzinfo=None)
        if round_trip != naive:
            raise LocalTimeError(
                "nonexistent_local_time", f"{naive:%Y-%m-%d %H:%M} does not exist in {tz.key} (the clocks go forward)"
            )
        if fold in (0, 1):
            return (second if fold else first).astimezone(UTC)
        raise LocalTimeError(
            "ambiguous_local_time",
            f"{naive:%Y-%m-%d %H:%M} happens twice in {tz.key} (the clocks go back): give a UTC offset",
        )
    return utc


def parse_instant(value: str, tz: ZoneInfo) -> datetime:
    """ISO 8601 with an offset or `Z` as given; without one, read as wall-clock time at `tz`. Returns aware UTC."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except (ValueError, TypeError, AttributeError):
        raise LocalTimeError("invalid_datetime", f"{value!r} is not an ISO 8601 date and time") from None
    if parsed.tzinfo is None:
        return localize(parsed, tz)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise LocalTimeError("invalid_datetime", f"{value!r} is out of range") from None


def utc_iso(value: datetime) -> str:
    """`2026-11-21T05:30:00Z`."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
