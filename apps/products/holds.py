"""Spaces of a product (in all and per channel) and stock of extras, held per local date under row locks.

The same scheme as apps.bookings.capacity, after it in the booking's transaction: every writer locks all the rows
it will touch in one INSERT ... ON CONFLICT DO UPDATE statement, in one order (product days by (product, date,
channel), then extra days by (extra, date)), checks under the lock, then changes the counts. A product's row with
channel "" counts every channel (its spaces); the channel's own row counts against the channel's allocation.

An accepted overbooking allowance (apps.insight, through signals.allocation_allowances: `allowances`) lets a
channel hold that many spaces beyond each limit on its day: the product's spaces, the channel's share and the car
park's capacity (apps.bookings.capacity), in the checks and in the spaces quoted alike. Nothing else oversells.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date

from django.db import connection, transaction

from apps.products import signals
from apps.products.models import ExtraDay, ProductDay, StopSell

Key = tuple[int, date, str]  # (product id, date, channel)
ExtraKey = tuple[int, date]  # (extra id, date)


@dataclass(frozen=True)
class ProductStay:
    product_id: int
    spaces: int
    channel: str
    share: int | None  # the channel's allocation, None: only the product's spaces
    dates: tuple[date, ...]
    allowance: dict[date, int] = field(default_factory=dict)  # spaces beyond the limits per day (`allowances`)

    def keys(self) -> set[Key]:
        return {(self.product_id, d, c) for d in self.dates for c in ("", self.channel)}


def allowances(*, carpark_id: int, channel: str, dates) -> dict[date, int]:
    """Spaces `channel` may hold beyond its limits per date: the overbooking allowances staff accepted (the largest
    answer per date). Several channels' allowances on one day do not add up at the car park: each raises the
    limits its own sales are checked against, so together they oversell at most the largest (never more than what
    was accepted, whose risk was checked with all of them together)."""
    if not dates:
        return {}
    found: dict[date, int] = {}
    for _receiver, answer in signals.allocation_allowances.send(
        sender=ProductDay, carpark_id=carpark_id, channel=channel, dates=sorted(dates)
    ):
        for day, spaces in (answer or {}).items():
            if spaces > 0:
                found[day] = max(found.get(day, 0), spaces)
    return found


class ProductFull(Exception):
    """Days of the stay with no space left for the product (`share`: the channel's allocation ran out)."""

    def __init__(self, dates: list[date], share: bool):
        super().__init__(", ".join(d.isoformat() for d in dates))
        self.dates, self.share = dates, share


class ExtraSoldOut(Exception):
    def __init__(self, extra_id: int, dates: list[date]):
        super().__init__(", ".join(d.isoformat() for d in dates))
        self.extra_id, self.dates = extra_id, dates


def _in_transaction() -> None:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("holds must be changed inside the booking's transaction")


def _lock_and_add(table: str, columns: list[str], types: list[str], keys: list[tuple], deltas: list[int]) -> dict:
    """Create and lock the rows of `keys` in key order and add each its delta; returns the held counts after.
    The first statement locks every row (a no-op update) before any count changes, so the check after sees every
    commit that came before."""
    ordered = sorted(zip(keys, deltas, strict=True))
    arrays = [list(col) for col in zip(*(k for k, _ in ordered), strict=True)]
    names = ", ".join(columns)
    unnest = ", ".join(f"%s::{t}[]" for t in types)
    sql = (
        f"INSERT INTO {table} ({names}, held) "  # noqa: S608  (our own table and column names; values bound)
        f"SELECT *, 0 FROM unnest({unnest}) AS k ORDER BY {', '.join(str(n + 1) for n in range(len(columns)))} "
        f"ON CONFLICT ({names}) DO UPDATE SET held = {table}.held RETURNING {names}, held"
    )
    changed = [(k, d) for k, d in ordered if d]
    with connection.cursor() as cursor:
        cursor.execute(sql, arrays)
        held = {tuple(row[:-1]): row[-1] for row in cursor.fetchall()}
        if changed:
            cursor.execute(
                f"UPDATE {table} AS t SET held = t.held + c.delta "  # noqa: S608
                f"FROM unnest({unnest}, %s::int[]) AS c({names}, delta) "
                f"WHERE {' AND '.join(f't.{c} = c.{c}' for c in columns)}",
                [*[list(col) for col in zip(*(k for k, _ in changed), strict=True)], [d for _, d in changed]],
            )
    return {k: held[k] + d for k, d in ordered}


def move_product_holds(*, old: ProductStay | None, new: ProductStay | None, allow_overbooking: bool) -> list[date]:
    """Release what `old` held and `new` does not, take what `new` needs; returns the days taken although full
    (only with `allow_overbooking`: agents' emails), else raises ProductFull."""
    _in_transaction()
    old_keys, new_keys = (old.keys() if old else set()), (new.keys() if new else set())
    take, release = new_keys - old_keys, old_keys - new_keys
    if not take and not release:
        return []
    keys = sorted(take | release)
    after = _lock_and_add(
        ProductDay._meta.db_table,
        ["product_id", "date", "channel"],
        ["bigint", "date", "text"],
        keys,
        [1 if k in take else -1 for k in keys],
    )
    extra = new.allowance if new else {}
    over_total = sorted({d for (p, d, c) in take if c == "" and after[(p, d, c)] > new.spaces + extra.get(d, 0)})
    over_share = sorted(
        {
            d
            for (p, d, c) in take
            if c and c == new.channel and new.share is not None and after[(p, d, c)] > new.share + extra.get(d, 0)
        }
    )
    if (over_total or over_share) and not allow_overbooking:
        raise ProductFull(over_total or over_share, share=not over_total)
    return sorted(set(over_total) | set(over_share))


def move_extra_holds(*, old: Counter, new: Counter, stock: dict[int, int], allow_overbooking: bool) -> None:
    """`old`/`new`: quantity per (extra id, date); `stock`: per extra id. Raises ExtraSoldOut past the stock."""
    _in_transaction()
    deltas = {k: new.get(k, 0) - old.get(k, 0) for k in set(old) | set(new)}
    keys = sorted(k for k, d in deltas.items() if d)
    if not keys:
        return
    after = _lock_and_add(
        ExtraDay._meta.db_table, ["extra_id", "date"], ["bigint", "date"], keys, [deltas[k] for k in keys]
    )
    for extra_id in sorted({e for e, _ in keys}):
        over = sorted(d for (e, d) in keys if e == extra_id and deltas[(e, d)] > 0 and after[(e, d)] > stock[e])
        if over and not allow_overbooking:
            raise ExtraSoldOut(extra_id, over)


def occupancy(*, product_id: int, spaces: int, dates: list[date]) -> dict[date, int]:
    """Percent of the product's spaces held per date (a read without locks, for pricing)."""
    return percent_held(days_held(product_ids=[product_id], channel="", dates=dates).held[(product_id, "")], spaces)


def percent_held(held: dict[date, int], spaces: int) -> dict[date, int]:
    """Per date, the percent of `spaces` that `held` spaces are (the occupancy the price rules look at)."""
    return {d: (100 * n // spaces if spaces else 100) for d, n in held.items()}


@dataclass
class DaysHeld:
    held: dict[tuple[int, str], dict[date, int]]  # per (product, "" or the channel) per date
    stopped: dict[int, set[date]]  # per product: dates stopped from sale for the channel (or all channels)


_DAYS_HELD = (
    f"SELECT product_id, date, channel, held, FALSE FROM {ProductDay._meta.db_table} "  # noqa: S608  (our tables)
    "WHERE product_id = ANY(%s) AND date = ANY(%s) AND channel IN ('', %s) "
    f"UNION ALL SELECT product_id, date, channel, 0, TRUE FROM {StopSell._meta.db_table} "
    "WHERE product_id = ANY(%s) AND date = ANY(%s) AND channel IN ('', %s)"
)


def days_held(*, product_ids: list[int], channel: str, dates: list[date]) -> DaysHeld:
    """Held per (product, "" or `channel`) per date and the days stopped from sale, for quotes and sales of several
    products in one read (no locks: a quote, or a sale's price before its holds are taken)."""
    found = DaysHeld(defaultdict(dict), defaultdict(set))
    if not product_ids or not dates:
        return found
    with connection.cursor() as cursor:
        cursor.execute(_DAYS_HELD, [list(product_ids), list(dates), channel] * 2)
        for product_id, day, ch, held, stop in cursor.fetchall():
            if stop:
                found.stopped[product_id].add(day)
            else:
                found.held[(product_id, ch)][day] = held
    return found
