"""Spaces per car park per day: holds taken and released under row locks, so the car park is never overbooked.

A booking that is not cancelled holds one space on every local calendar date its stay touches (the same days its
price counts, apps.bookings.pricing). The counts live in CapacityDay rows, one per (car park, date), created on
demand. Like pretix's quota locking, every writer locks all the rows it will touch in ONE statement, in ONE order
(car park, date), inside the booking's transaction: two bookings that share days queue on the first shared row
(no deadlock, since all lock in the same order), and a check made under the lock stays true until commit.
Bookings on disjoint days never wait for each other. That statement is an INSERT ... SELECT ...
ORDER BY ... ON CONFLICT DO UPDATE, which creates the missing rows and locks the existing ones as it goes:
`take_new` (a new booking: held + 1 and the check in one round trip) and `_lock_rows` (amend and cancel: the old
and new days together, then changed).

Everything here must run inside the caller's transaction (the booking services own it).
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from django.db import transaction
from django.db.models import F, Q

from apps.bookings.models import CapacityDay

DayKey = tuple[int, date]  # (car park id, local date)


@dataclass(frozen=True)
class Stay:
    """The days a booking holds at one car park."""

    carpark_id: int
    capacity: int
    dates: tuple[date, ...]
    allowance: dict[date, int] = field(default_factory=dict)  # accepted overbooking (apps.products.holds.allowances)

    def limit(self, day: date) -> int:
        return self.capacity + self.allowance.get(day, 0)

    def keys(self) -> set[DayKey]:
        return {(self.carpark_id, d) for d in self.dates}


class DaysFull(Exception):
    def __init__(self, dates: list[date]):
        super().__init__(", ".join(d.isoformat() for d in dates))
        self.dates = dates


def move_holds(*, old: Stay | None, new: Stay | None, allow_overbooking: bool = False) -> list[date]:
    """Release the days of `old` no longer needed and take the days of `new` not yet held, atomically.

    Returns the days taken although full (only with `allow_overbooking`); raises DaysFull otherwise.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("capacity holds must be changed inside the booking's transaction")
    old_keys, new_keys = (old.keys() if old else set()), (new.keys() if new else set())
    release, take = old_keys - new_keys, new_keys - old_keys
    if not release and not take:
        return []
    held = _lock_rows(release | take)
    full = sorted(d for (cp, d) in take if held[(cp, d)] >= new.limit(d))
    if full and not allow_overbooking:
        raise DaysFull(full)
    _add(take, +1)
    _add(release, -1)
    return full


def take_new(*, stay: Stay, allow_overbooking: bool = False) -> list[date]:
    """Hold the days of a NEW booking in one statement: missing day rows are inserted and all are incremented by
    INSERT ... ON CONFLICT DO UPDATE, which locks the rows in date order (the same order as `move_holds`).

    Returns the days taken although full (only with `allow_overbooking`); raises DaysFull otherwise, and the
    caller's transaction (savepoint) rolls the increments back.
    """
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise RuntimeError("capacity holds must be changed inside the booking's transaction")
    table = CapacityDay._meta.db_table
    sql = (
        f"INSERT INTO {table} (carpark_id, date, held) "  # noqa: S608  (the model's own table name; values bound)
        "SELECT %s, day, 1 FROM unnest(%s::date[]) AS day ORDER BY day "
        f"ON CONFLICT (carpark_id, date) DO UPDATE SET held = {table}.held + 1 "
        "RETURNING date, held"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [stay.carpark_id, sorted(stay.dates)])
        rows = cursor.fetchall()
    full = sorted(day for day, held in rows if held > stay.limit(day))
    if full and not allow_overbooking:
        raise DaysFull(full)
    return full


def spaces_left(*, carpark_id: int, capacity: int, dates: list[date], allowance: dict[date, int] | None = None) -> int:
    """Spaces still free on the busiest of `dates` (a read without locks: a quote, not a promise); `allowance`: the
    seller's accepted overbooking per date, as the holds count it."""
    if not dates:
        return max(0, capacity)
    table = CapacityDay._meta.db_table
    with transaction.get_connection().cursor() as cursor:
        cursor.execute(
            f"SELECT date, held FROM {table} WHERE carpark_id = %s AND date = ANY(%s)",  # noqa: S608  (our table)
            [carpark_id, list(dates)],
        )
        held = dict(cursor.fetchall())
    extra = allowance or {}
    return max(0, min(capacity + extra.get(d, 0) - held.get(d, 0) for d in dates))


def _by_carpark(keys: set[DayKey]) -> Q:
    dates: dict[int, list[date]] = defaultdict(list)
    for cp, d in keys:
        dates[cp].append(d)
    query = Q()
    for cp, ds in dates.items():
        query |= Q(carpark_id=cp, date__in=ds)
    return query


def _lock_rows(keys: set[DayKey]) -> dict[DayKey, int]:
    """Lock the rows of `keys` (creating the missing ones) in (car park, date) order, the one order every writer
    uses, and return their `held`. On PostgreSQL one INSERT ... ON CONFLICT DO UPDATE (a no-op update, which locks
    like FOR UPDATE) creates and locks them in that order; creating first and locking after would let a row
    inserted early wait behind a lock taken late, the order broken."""
    connection = transaction.get_connection()
    ordered = sorted(keys)
    table = CapacityDay._meta.db_table
    sql = (
        f"INSERT INTO {table} (carpark_id, date, held) "  # noqa: S608  (the model's own table name; values bound)
        "SELECT carpark, day, 0 FROM unnest(%s::bigint[], %s::date[]) AS k(carpark, day) ORDER BY carpark, day "
        f"ON CONFLICT (carpark_id, date) DO UPDATE SET held = {table}.held "
        "RETURNING carpark_id, date, held"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [[cp for cp, _ in ordered], [d for _, d in ordered]])
        return {(cp, d): held for cp, d, held in cursor.fetchall()}


def _add(keys: set[DayKey], delta: int) -> None:
    if keys:
        CapacityDay.objects.filter(_by_carpark(keys)).update(held=F("held") + delta)
