"""What history teaches about each channel's bookings: no-show share, arrival and departure offsets, and the share
of bookings still alive N days before arrival that will yet be cancelled.

Read in one query per use into numpy arrays (`Stays`), so the forecast, its backtest and the learning all work on
the same few columns in memory. A booking's cancellation time is its `updated_at` once cancelled (a cancelled
booking is never changed again). A channel is the agent's code, else the booking's source (web, staff).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.db import connection

#: Days before arrival at which the chance of a cancellation still to come is learned (and interpolated between).
LEAD_GRID = np.array([0, 1, 2, 3, 5, 7, 10, 14, 21, 30, 45, 60, 90, 180], dtype=float)
LEARN_DAYS = 180
MIN_SAMPLES = 30  # a channel with fewer stays due is forecast with every channel's figures pooled
POOLED = "*"
NO_SHOW_AFTER_H = 3  # a booking not arrived this long after its arrival time is taken as a no-show

# Times as epoch seconds (float8, NaN where absent): numbers, not datetimes, are what the arrays need, and
# psycopg loads them many times faster.
STAYS_SQL = """
SELECT COALESCE(ag.code, b.source),
       extract(epoch FROM b.arrival)::float8, extract(epoch FROM b.departure)::float8,
       extract(epoch FROM b.created_at)::float8,
       COALESCE(CASE WHEN b.status = 'cancelled' THEN extract(epoch FROM b.updated_at)::float8 END, 'NaN'),
       COALESCE(extract(epoch FROM v.entered_at)::float8, 'NaN'),
       COALESCE(extract(epoch FROM v.exited_at)::float8, 'NaN')
FROM bookings_booking b
LEFT JOIN agents_agent ag ON ag.id = b.agent_id
LEFT JOIN LATERAL (
    SELECT entered_at, exited_at FROM access_visit WHERE booking_id = b.id ORDER BY entered_at LIMIT 1
) v ON true
WHERE b.carpark_id = %(cp)s AND b.arrival < %(until)s AND b.departure > %(since)s AND b.created_at <= %(made_by)s
  AND b.arrival > %(since)s - interval '60 days'
"""


@dataclass
class Stays:
    """Bookings as arrays (times as float seconds since the epoch; NaN where absent)."""

    channel: np.ndarray
    arrival: np.ndarray
    departure: np.ndarray
    created: np.ndarray
    cancelled: np.ndarray
    entered: np.ndarray
    exited: np.ndarray

    def __len__(self) -> int:
        return len(self.arrival)

    def take(self, mask: np.ndarray) -> "Stays":
        return Stays(*(getattr(self, f)[mask] for f in self.__dataclass_fields__))


def stays_load(*, carpark_id: int, since: datetime, until: datetime, made_by: datetime) -> Stays:
    """Bookings made by `made_by` whose stay overlaps [since, until) (stays start at most 60 days before `since`)."""
    with connection.cursor() as cursor:
        cursor.execute(STAYS_SQL, {"cp": carpark_id, "since": since, "until": until, "made_by": made_by})
        rows = cursor.fetchall()
    if not rows:
        return Stays(np.array([], dtype=object), *(np.array([], dtype=float) for _ in range(6)))
    channel, *times = zip(*rows, strict=True)
    return Stays(np.array(channel, dtype=object), *(np.array(t, dtype=float) for t in times))


@dataclass
class ChannelHabits:
    """One channel's learned behaviour (offsets in minutes, sorted, for empirical distribution functions)."""

    samples: int
    no_show: float
    arrival_offsets: np.ndarray
    departure_offsets: np.ndarray
    cancel_to_come: np.ndarray  # per LEAD_GRID point
    show_extra_var: float = 0.0  # day-to-day variance of the show rate beyond a binomial's (weather, strikes...)

    def summary(self) -> dict:
        def q(values, p):
            return round(float(np.quantile(values, p)), 1) if len(values) else 0.0

        return {
            "samples": self.samples,
            "show_extra_sd": round(float(np.sqrt(self.show_extra_var)), 4),
            "no_show": round(self.no_show, 4),
            "arrival_offset_min": {"p10": q(self.arrival_offsets, 0.1), "median": q(self.arrival_offsets, 0.5),
                                   "p90": q(self.arrival_offsets, 0.9)},
            "departure_offset_min": {"p10": q(self.departure_offsets, 0.1), "median": q(self.departure_offsets, 0.5),
                                     "p90": q(self.departure_offsets, 0.9)},
            "cancel_to_come": {int(d): round(float(p), 4) for d, p in zip(LEAD_GRID, self.cancel_to_come, strict=True)},
        }  # fmt: skip

    def cancel_share(self, lead_days: np.ndarray) -> np.ndarray:
        return np.interp(lead_days, LEAD_GRID, self.cancel_to_come)

    def arrived_by(self, minutes_after_arrival: np.ndarray) -> np.ndarray:
        """P(the car has entered by this many minutes after its booked arrival | it comes)."""
        return _cdf(self.arrival_offsets, minutes_after_arrival)

    def still_inside(self, minutes_after_departure: np.ndarray) -> np.ndarray:
        """P(the car has not left by this many minutes after its booked departure)."""
        return 1.0 - _cdf(self.departure_offsets, minutes_after_departure)


NOTHING_LEARNED = ChannelHabits(0, 0.0, np.zeros(1), np.zeros(1), np.zeros(len(LEAD_GRID)))


def _cdf(sorted_values: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.searchsorted(sorted_values, x, side="right") / len(sorted_values)


def habits_learn(stays: Stays, *, until: datetime) -> dict[str, ChannelHabits]:
    """Per channel (and POOLED) from the stays due before `until` (arrival at least NO_SHOW_AFTER_H hours before)."""
    cutoff = until.timestamp() - NO_SHOW_AFTER_H * 3600
    due = stays.take(stays.arrival < cutoff)
    out: dict[str, ChannelHabits] = {}
    channels = sorted(set(due.channel.tolist()))
    for channel in [POOLED, *channels]:
        mine = due if channel == POOLED else due.take(due.channel == channel)
        habits = _learn_one(mine, until=until.timestamp())
        if habits is not None:
            out[channel] = habits
    return out


def _learn_one(s: Stays, *, until: float) -> ChannelHabits | None:
    live = np.isnan(s.cancelled)
    samples = int(live.sum())
    if samples < MIN_SAMPLES:
        return None
    came = live & ~np.isnan(s.entered)
    no_show = 1.0 - came.sum() / samples
    arrival_offsets = np.sort((s.entered[came] - s.arrival[came]) / 60)
    left = came & ~np.isnan(s.exited)
    departure_offsets = np.sort((s.exited[left] - s.departure[left]) / 60)
    created_lead = (s.arrival - s.created) / 86400
    cancel_lead = (s.arrival - s.cancelled) / 86400  # NaN for live bookings
    to_come = np.zeros(len(LEAD_GRID))
    for i, lead in enumerate(LEAD_GRID):
        alive = (created_lead >= lead) & (np.isnan(cancel_lead) | (cancel_lead < lead))
        # only bookings whose outcome was known by `until` (arrival passed): all of `s` here
        n = alive.sum()
        to_come[i] = (alive & ~np.isnan(cancel_lead)).sum() / n if n else 0.0
    return ChannelHabits(
        show_extra_var=_extra_variance(s.arrival[live], came[live]),
        samples=samples,
        no_show=float(no_show),
        arrival_offsets=arrival_offsets if len(arrival_offsets) else np.zeros(1),
        departure_offsets=departure_offsets if len(departure_offsets) else np.zeros(1),
        cancel_to_come=to_come,
    )


def _extra_variance(arrival: np.ndarray, came: np.ndarray) -> float:
    """Variance of the daily show rate across days, less what the days' sizes alone explain (never below 0)."""
    day = np.floor(arrival / 86400).astype(np.int64)
    _, inverse, counts = np.unique(day, return_inverse=True, return_counts=True)
    shown = np.bincount(inverse, weights=came.astype(float))
    keep = counts >= 10
    if keep.sum() < 10:
        return 0.0
    rates, n = shown[keep] / counts[keep], counts[keep]
    p = float(rates.mean())
    return max(0.0, float(rates.var()) - float(np.mean(p * (1 - p) / n)))


def habits_for(habits: dict[str, ChannelHabits], channel: str) -> ChannelHabits:
    return habits.get(channel) or habits.get(POOLED) or NOTHING_LEARNED


def learning_window(until: datetime) -> tuple[datetime, datetime]:
    return until - timedelta(days=LEARN_DAYS), until
