"""The hourly occupancy summary (OccupancyHour): bookings holding a place and vehicles on site at each hour's start.

Why a summary: the occupancy report over weeks would otherwise sweep every visit and booking of the car park (no
time index on visits: each index there is written on the barrier's path). How it stays correct:
- only closed hours (before the current one) are stored; the current and future hours are always computed;
- the hourly job `insight.occupancy_refresh` recomputes the trailing `REFRESH_HOURS` (late exit reads, visits
  closed by staff, bookings cancelled close to arrival land there), and the report fills any hour still missing;
- `manage.py insight_rebuild` recomputes any range from the source rows; `tests/insight` rebuilds and compares.
A count is `entered_at <= hour < exited_at` (visits) and `arrival <= hour < departure` (bookings not cancelled).
"""

import math
from datetime import UTC, datetime, timedelta

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from apps.carparks.models import CarPark
from apps.insight.models import OccupancyHour

HOUR = timedelta(hours=1)
REFRESH_HOURS = 48

SWEEP = """
SELECT k, d, count(*) FROM (
  SELECT {start_col} AS t, 1 AS d FROM {table} WHERE carpark_id = %(cp)s {live} AND {start_col} > %(s)s
      AND {start_col} < %(e)s
  UNION ALL
  SELECT {end_col}, -1 FROM {table} WHERE carpark_id = %(cp)s {live} AND {end_col} > %(s)s AND {end_col} < %(e)s
) x, LATERAL (SELECT ceil(extract(epoch FROM (t - %(s)s)) / 3600)::int AS k) kk
GROUP BY k, d
"""
BASE = """
SELECT count(*) FROM {table} WHERE carpark_id = %(cp)s {live} AND {start_col} <= %(s)s
    AND ({end_col} IS NULL OR {end_col} > %(s)s)
"""
SOURCES = {
    "on_site": ("access_visit", "entered_at", "exited_at", ""),
    "booked": ("bookings_booking", "arrival", "departure", "AND status <> 'cancelled'"),
}


def floor_hour(when: datetime) -> datetime:
    """The hour's start in UTC (hours are added in UTC: in a local zone `+ 1 h` is wall-clock time across DST)."""
    return when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def occupancy_compute(*, carpark_id: int, start: datetime, end: datetime) -> dict[str, np.ndarray]:
    """Counts at each hour start in [start, end) (whole UTC hours), straight from visits and bookings."""
    start = floor_hour(start)
    n = max(0, math.ceil((end - start) / HOUR))
    out: dict[str, np.ndarray] = {"hours": np.array([start + i * HOUR for i in range(n)], dtype=object)}
    args = {"cp": carpark_id, "s": start, "e": start + n * HOUR}
    with connection.cursor() as cursor:
        for name, (table, start_col, end_col, live) in SOURCES.items():
            fmt = {"table": table, "start_col": start_col, "end_col": end_col, "live": live}
            cursor.execute(BASE.format(**fmt), args)
            base = cursor.fetchone()[0]
            cursor.execute(SWEEP.format(**fmt), args)
            deltas = np.zeros(n + 1, dtype=np.int64)
            moves = {+1: np.zeros(n + 1, dtype=np.int64), -1: np.zeros(n + 1, dtype=np.int64)}
            for k, d, count in cursor.fetchall():
                deltas[k] += d * count
                moves[d][k - 1] += count  # an event in (h_{k-1}, h_k] happened during hour k-1
            out[name] = base + np.cumsum(deltas)[:n]
            if name == "on_site":
                out["entries"], out["exits"] = moves[+1][:n], moves[-1][:n]
    return out


@transaction.atomic
def occupancy_hours_refresh(*, carpark_id: int, start: datetime, end: datetime) -> int:
    """Recompute and store the closed hours of [start, end); returns how many rows were written."""
    end = min(end, floor_hour(timezone.now()))
    start = floor_hour(start)
    if end <= start:
        return 0
    counts = occupancy_compute(carpark_id=carpark_id, start=start, end=end)
    rows = [
        OccupancyHour(
            carpark_id=carpark_id,
            hour=hour,
            booked=int(counts["booked"][i]),
            on_site=int(counts["on_site"][i]),
            entries=int(counts["entries"][i]),
            exits=int(counts["exits"][i]),
        )
        for i, hour in enumerate(counts["hours"])
    ]
    OccupancyHour.objects.bulk_create(
        rows,
        batch_size=5000,
        update_conflicts=True,
        unique_fields=["carpark", "hour"],
        update_fields=["booked", "on_site", "entries", "exits"],
    )
    return len(rows)


def occupancy_hours(*, carpark: CarPark, start: datetime, end: datetime) -> dict[str, np.ndarray]:
    """The counts for [start, end): stored hours from the summary, missing closed hours filled (and stored), the
    current and future hours computed."""
    now_hour = floor_hour(timezone.now())
    start = floor_hour(start)
    stored = {
        h: (b, o, en, ex)
        for h, b, o, en, ex in OccupancyHour.objects.filter(carpark=carpark, hour__gte=start, hour__lt=end)
        .order_by("hour")
        .values_list("hour", "booked", "on_site", "entries", "exits")
    }
    n = max(0, math.ceil((end - start) / HOUR))
    hours = [start + i * HOUR for i in range(n)]
    missing = [h for h in hours if h < now_hour and h not in stored]
    if missing:
        occupancy_hours_refresh(carpark_id=carpark.pk, start=missing[0], end=missing[-1] + HOUR)
        return occupancy_hours(carpark=carpark, start=start, end=end)
    out = {"hours": np.array(hours, dtype=object)}
    live = occupancy_compute(carpark_id=carpark.pk, start=now_hour, end=end) if end > now_hour else None
    for j, name in enumerate(("booked", "on_site", "entries", "exits")):
        column = np.zeros(n, dtype=np.int64)
        for i, h in enumerate(hours):
            if h in stored:
                column[i] = stored[h][j]
            elif live is not None:
                column[i] = live[name][int((h - now_hour) / HOUR)]
        out[name] = column
    return out
