"""What every report returns and how its query string is read: a car park (or all the user's), a date range, and
the report's own choices; a bad range is a message, never a 500."""

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.core.exceptions import FieldDoesNotExist
from django.utils import timezone

from apps.bookings.models import Booking
from apps.carparks.models import CarPark


class BadRange(ValueError):
    """A reversed, unreadable or too-long date range: its message is shown to the user as it is."""


@dataclass
class Chart:
    kind: str  # "line" | "bar" | "stacked"
    x_labels: list[str]
    series: list[tuple[str, list[float | None]]]
    y_title: str = ""


@dataclass
class Report:
    slug: str
    title: str
    columns: list[str]
    rows: list[list]
    chart: Chart | None = None
    notes: list[str] = field(default_factory=list)
    extra_tables: list[tuple[str, list[str], list[list]]] = field(default_factory=list)


@dataclass(frozen=True)
class Params:
    carparks: tuple[CarPark, ...]  # what the report covers (one or all the user may see)
    start: date  # local dates, both included
    end: date
    group: str = "day"  # day | week | month
    by: str = "channel"  # channel | carpark

    @property
    def carpark_ids(self) -> list[int]:
        return [c.pk for c in self.carparks]

    def utc_bounds(self, carpark: CarPark) -> tuple[datetime, datetime]:
        """[start 00:00, end+1 00:00) in the car park's zone."""
        tz = carpark.tz
        return (
            datetime.combine(self.start, time(), tzinfo=tz),
            datetime.combine(self.end + timedelta(days=1), time(), tzinfo=tz),
        )


def parse_range(query, *, default_days: int, max_days: int) -> tuple[date, date]:
    """`start` and `end` (YYYY-MM-DD) from the query; by default the last `default_days` days up to yesterday."""
    today = timezone.localdate()
    try:
        end = date.fromisoformat(query["end"]) if query.get("end") else today - timedelta(days=1)
        start = date.fromisoformat(query["start"]) if query.get("start") else end - timedelta(days=default_days - 1)
    except ValueError:
        raise BadRange("Dates must be given as YYYY-MM-DD.") from None
    if start > end:
        raise BadRange(f"The start date {start} is after the end date {end}: swap them.")
    if (end - start).days + 1 > max_days:
        raise BadRange(
            f"That range is {(end - start).days + 1} days; this report covers at most {max_days} days at a time."
        )
    return start, end


def choice(query, name: str, options: tuple[str, ...]) -> str:
    value = query.get(name) or options[0]
    return value if value in options else options[0]


def product_sql() -> tuple[str, str] | None:
    """(JOIN, label expression) for the booking's product, once bookings carry one (products issue); else None.

    Read from the model, so the reports split by product as soon as `Booking.product` exists, with no change here.
    """
    try:
        field = Booking._meta.get_field("product")
    except FieldDoesNotExist:
        return None
    model = field.related_model
    names = {f.name for f in model._meta.get_fields()}
    label = next((n for n in ("code", "name") if n in names), "id")
    column = model._meta.get_field(label).column
    join = f"LEFT JOIN {model._meta.db_table} pr ON pr.id = b.{field.column}"
    return join, f"COALESCE(pr.{column}::text, '-')"
