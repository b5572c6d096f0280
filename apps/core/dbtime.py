"""Stored times that Python cannot hold: a timestamptz before year 1 or after 9999 (or +-infinity) fails to load, and
so would every page that lists its row, until someone deletes it by hand. New rows cannot hold one any more (the
devices' time window, apps.access's check constraint); rows stored before are loaded as the earliest or latest time
Python can show in any time zone, so that pages list them (a day inside datetime's range: a local time still fits).
"""

from datetime import UTC, datetime, timedelta

from django.db.backends.signals import connection_created
from psycopg import DataError, postgres
from psycopg.pq import Format

EARLIEST = datetime.min.replace(tzinfo=UTC) + timedelta(days=1)
LATEST = datetime.max.replace(tzinfo=UTC) - timedelta(days=1)

_TIMESTAMPTZ = postgres.types["timestamptz"].oid


class _Clamped:
    """Mixed into the connection's own timestamptz loader (Django's, in the connection's time zone)."""

    def load(self, data):
        try:
            return super().load(data)
        except DataError as exc:  # psycopg says which side: "too small (before year 1)" / "too large (after year 10K)"
            if "too small" in str(exc):
                return EARLIEST
            if "too large" in str(exc):
                return LATEST
            raise


def from_json(text: str) -> datetime:
    """A timestamptz as PostgreSQL writes it in JSON (ISO 8601, "... BC", +-infinity), clamped like a loaded one."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        if text.startswith("-") or text.endswith("BC"):
            return EARLIEST
        if text == "infinity" or text[:5].isdigit():  # after year 9999
            return LATEST
        raise


def _clamp_times(sender, connection, **kwargs) -> None:
    adapters = connection.connection.adapters
    loader = adapters.get_loader(_TIMESTAMPTZ, Format.TEXT)
    if loader is not None and not issubclass(loader, _Clamped):  # a pooled connection keeps it
        adapters.register_loader(_TIMESTAMPTZ, type(f"Clamped{loader.__name__}", (_Clamped, loader), {}))


def install() -> None:
    connection_created.connect(_clamp_times, dispatch_uid="apps.core.dbtime")
