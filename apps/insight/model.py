"""The forecast's model: the chance that each booking on the books is on site at an hour, and the pickup still to
come (bookings not made yet), both learned from history.

Pickup is learned the way revenue managers do: for each horizon (days ahead) the ratio of the vehicles the visits
then showed to what the bookings on the books at that horizon predicted, over recent complete days. It multiplies
the on-the-books forecast at that horizon (so it carries walk-ins and permit holders too).
"""

from datetime import datetime, time, timedelta

import numpy as np

from apps.carparks.models import CarPark
from apps.insight import learning

CHUNK = 2000
PICKUP_HORIZONS = np.array([0, 1, 2, 3, 5, 7, 10, 14, 21, 30], dtype=float)
PICKUP_DAYS = 21


def expected_on_site(
    stays: learning.Stays, habits: dict[str, learning.ChannelHabits], *, as_of: float, hours: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Expected count and its variance at each hour start (epoch seconds), as seen at `as_of`."""
    mean = np.zeros(len(hours))
    var = np.zeros(len(hours))
    live = (stays.created <= as_of) & ~(stays.cancelled <= as_of) & (stays.departure > hours[0] - 86400)
    inside = live & (stays.entered <= as_of) & ~(stays.exited <= as_of)
    waiting = live & ~(stays.entered <= as_of) & (stays.arrival > as_of - learning.NO_SHOW_AFTER_H * 3600)
    for channel in set(stays.channel[inside | waiting].tolist()):
        h = learning.habits_for(habits, channel)
        mine = stays.channel == channel
        for group, came in ((inside & mine, True), (waiting & mine, False)):
            idx = np.flatnonzero(group)
            for start in range(0, len(idx), CHUNK):
                p = _presence(stays, idx[start : start + CHUNK], h, as_of=as_of, hours=hours, inside=came)
                mean += p.sum(axis=0)
                var += (p * (1 - p)).sum(axis=0)
    return mean, var


def _presence(stays, idx, h: learning.ChannelHabits, *, as_of: float, hours: np.ndarray, inside: bool) -> np.ndarray:
    departure = stays.departure[idx][:, None]
    stay_on = h.still_inside((hours[None, :] - departure) / 60)
    if inside:  # known to be inside at as_of: conditional on not having left by then
        already = h.still_inside((as_of - stays.departure[idx]) / 60)[:, None]
        return np.clip(stay_on / np.maximum(already, 1e-3), 0, 1)
    arrival = stays.arrival[idx][:, None]
    lead_days = np.maximum(0, (stays.arrival[idx] - as_of) / 86400)
    comes = (1 - h.no_show) * (1 - h.cancel_share(lead_days))
    return comes[:, None] * h.arrived_by((hours[None, :] - arrival) / 60) * stay_on


def day_hours(carpark: CarPark, day) -> np.ndarray:
    """The hour starts (epoch seconds) of a local date (23 or 25 on a clock-change day)."""
    start = datetime.combine(day, time(), tzinfo=carpark.tz)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=carpark.tz)
    n = round((end - start).total_seconds() / 3600)
    return np.array([start.timestamp() + 3600 * i for i in range(n)])


def pickup_learn(
    carpark: CarPark, stays: learning.Stays, habits: dict, *, days: list, actual: dict[float, int]
) -> np.ndarray:
    """Per PICKUP_HORIZONS point: vehicles seen / on-the-books expectation made that many days ahead (1 if unknown)."""
    factors = np.ones(len(PICKUP_HORIZONS))
    for i, horizon in enumerate(PICKUP_HORIZONS):
        seen = expected = 0.0
        for day in days:
            hours = day_hours(carpark, day)
            mean, _ = expected_on_site(stays, habits, as_of=hours[0] - horizon * 86400, hours=hours)
            expected += float(mean.sum())
            seen += sum(actual.get(h, 0) for h in hours)
        if expected > 0 and seen > 0:
            factors[i] = seen / expected
    return factors


def pickup_at(factors: np.ndarray, horizon_days: np.ndarray) -> np.ndarray:
    return np.interp(horizon_days, PICKUP_HORIZONS, factors)
