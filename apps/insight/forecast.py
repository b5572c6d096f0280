"""The occupancy forecast: expected vehicles on site per hour for the next 30 days, with an 80% interval.

From the bookings on the books, each counted with the chance that it is on site at that hour, learned per channel
(apps/insight/learning.py): it is not cancelled yet (cancellations still to come at its lead time), it comes (no-show
share), it has arrived by then (arrival offsets) and not left yet (departure offsets). Cars already inside count
until they are likely to have left. The sum's spread is that of independent bookings (a Poisson-binomial, taken as
normal), widened to the error the backtest measured at that horizon where that is larger.

The backtest replays the forecast as it would have been made N days before each of the last 14 days (learning only
from what was known before the first of them) and compares it with the vehicles the visits show on site.
"""

from datetime import UTC, datetime, time, timedelta
from statistics import NormalDist

import numpy as np
from django.db import transaction
from django.utils import timezone

from apps.carparks.models import CarPark
from apps.insight import learning
from apps.insight.models import Forecast
from apps.insight.reports.base import Chart
from apps.insight.summary import floor_hour, occupancy_hours

HORIZON_DAYS = 30
BACKTEST_DAYS = 14
BACKTEST_HORIZONS = (1, 3, 7, 14, 28)
Z80 = NormalDist().inv_cdf(0.9)
CHUNK = 2000
DEFAULT_RISK = 1 / 200


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


def _day_hours(carpark: CarPark, day) -> np.ndarray:
    start = datetime.combine(day, time(), tzinfo=carpark.tz)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=carpark.tz)
    n = round((end - start).total_seconds() / 3600)
    return np.array([start.timestamp() + 3600 * i for i in range(n)])


def backtest(carpark: CarPark, *, now: datetime) -> dict:
    """Error per horizon of forecasts replayed over the last BACKTEST_DAYS complete days."""
    today = timezone.localtime(now, carpark.tz).date()
    days = [today - timedelta(days=i) for i in range(BACKTEST_DAYS, 0, -1)]
    first = datetime.combine(days[0], time(), tzinfo=carpark.tz)
    window_end = datetime.combine(today, time(), tzinfo=carpark.tz)
    learned_until = first - timedelta(days=max(BACKTEST_HORIZONS))
    habits = learning.habits_learn(
        learning.stays_load(
            carpark_id=carpark.pk, since=learned_until - timedelta(days=learning.LEARN_DAYS),
            until=learned_until, made_by=learned_until,
        ),
        until=learned_until,
    )  # fmt: skip
    if learning.POOLED not in habits:
        return {}
    stays = learning.stays_load(carpark_id=carpark.pk, since=first, until=window_end, made_by=window_end)
    actual = occupancy_hours(carpark=carpark, start=first, end=window_end)
    actual_by_hour = {h.timestamp(): int(v) for h, v in zip(actual["hours"], actual["on_site"], strict=True)}
    out = {}
    for horizon in BACKTEST_HORIZONS:
        errors, covered, bias = [], 0, 0.0
        for day in days:
            hours = _day_hours(carpark, day)
            as_of = hours[0] - horizon * 86400
            mean, var = expected_on_site(stays, habits, as_of=as_of, hours=hours)
            truth = np.array([actual_by_hour.get(h, 0) for h in hours])
            spread = Z80 * np.sqrt(var)
            errors.extend(np.abs(mean - truth).tolist())
            covered += int(((truth >= mean - spread) & (truth <= mean + spread)).sum())
            bias += float((mean - truth).sum())
        n = len(errors)
        mae = float(np.mean(errors))
        out[str(horizon)] = {
            "mae": round(mae, 1),
            "mae_pct_capacity": round(100 * mae / max(carpark.capacity, 1), 1),
            "rmse": round(float(np.sqrt(np.mean(np.square(errors)))), 1),
            "bias": round(bias / n, 1),
            "coverage_80": round(100 * covered / n, 1),
        }
    return out


def _rmse_at(backtest_: dict, horizon_days: np.ndarray) -> np.ndarray:
    if not backtest_:
        return np.zeros(len(horizon_days))
    xs = np.array([int(k) for k in backtest_])
    ys = np.array([v["rmse"] for v in backtest_.values()])
    return np.interp(horizon_days, xs, ys)


@transaction.atomic
def forecast_refresh(*, carpark_id: int, risk: float | None = None, now: datetime | None = None) -> Forecast:
    """Make and store a new forecast for the car park (the newest is the one shown); idempotent in effect."""
    from apps.insight import overbooking  # overbooking reads forecasts: imported here, not at module level

    carpark = CarPark.objects.get(pk=carpark_id)
    now = now or timezone.now()
    risk = risk or DEFAULT_RISK
    since, until = learning.learning_window(now)
    habits = learning.habits_learn(
        learning.stays_load(carpark_id=carpark.pk, since=since, until=until, made_by=now), until=now
    )
    start = floor_hour(now)
    end = start + timedelta(days=HORIZON_DAYS)
    hours = np.array([(start + timedelta(hours=i)).timestamp() for i in range(HORIZON_DAYS * 24)])
    stays = learning.stays_load(carpark_id=carpark.pk, since=start, until=end, made_by=now)
    mean, var = expected_on_site(stays, habits, as_of=now.timestamp(), hours=hours)
    tested = backtest(carpark, now=now) if learning.POOLED in habits else {}
    sd = np.maximum(np.sqrt(var), _rmse_at(tested, (hours - now.timestamp()) / 86400))
    low, high = np.maximum(0, mean - Z80 * sd), mean + Z80 * sd
    rows = [
        [datetime.fromtimestamp(h, tz=UTC).isoformat(), round(m, 2), round(lo, 2), round(hi, 2)]
        for h, m, lo, hi in zip(hours, mean, low, high, strict=True)
    ]
    forecast = Forecast.objects.create(
        carpark=carpark,
        made_at=now,
        has_history=learning.POOLED in habits,
        hours=rows,
        learned={channel: h.summary() for channel, h in habits.items()},
        backtest=tested,
        risk=risk,
    )
    forecast.recommendations = overbooking.recommend(carpark=carpark, forecast=forecast, stays=stays, habits=habits)
    forecast.save(update_fields=["recommendations"])
    return forecast


def forecast_latest(*, carpark_id: int) -> Forecast | None:
    return Forecast.objects.filter(carpark_id=carpark_id).order_by("-made_at", "-pk").first()


def daily_peaks(forecast: Forecast, carpark: CarPark) -> list[dict]:
    """Per local date: the hour of the highest expected count, with its interval."""
    days: dict = {}
    for hour, mean, low, high in forecast.hours:
        local = timezone.localtime(datetime.fromisoformat(hour), carpark.tz)
        best = days.get(local.date())
        if best is None or mean > best["expected"]:
            days[local.date()] = {"date": local.date(), "at": local.strftime("%H:%M"), "expected": mean,
                                  "low": low, "high": high}  # fmt: skip
    return [days[d] for d in sorted(days)]


def forecast_view(*, forecast_id: int) -> dict:
    """What the forecast page shows: the chart, daily peaks, learned figures, backtest, recommendations."""
    from apps.insight import overbooking

    forecast = Forecast.objects.select_related("carpark").get(pk=forecast_id)
    carpark = forecast.carpark
    labels = [
        timezone.localtime(datetime.fromisoformat(h[0]), carpark.tz).strftime("%d %b %H:%M") for h in forecast.hours
    ]
    chart = Chart(
        kind="line",
        x_labels=labels,
        series=[
            ("Expected", [h[1] for h in forecast.hours]),
            ("80% low", [h[2] for h in forecast.hours]),
            ("80% high", [h[3] for h in forecast.hours]),
            ("Capacity", [float(carpark.capacity)] * len(labels)),
        ],
        y_title="Vehicles on site",
    )
    return {
        "chart": chart,
        "peaks": daily_peaks(forecast, carpark),
        "learned": sorted(forecast.learned.items()),
        "backtest": sorted(forecast.backtest.items(), key=lambda kv: int(kv[0])),
        "recommendations": overbooking.recommendations_with_state(forecast),
        "risk_in": round(1 / forecast.risk) if forecast.risk else 0,
        "horizon_days": HORIZON_DAYS,
    }


def today_line(*, carpark_id: int, now: datetime | None = None) -> list[list]:
    """Today's hours of the newest forecast: [hour ISO, expected, low, high] (the dashboard draws it)."""
    forecast = forecast_latest(carpark_id=carpark_id)
    if forecast is None:
        return []
    carpark = forecast.carpark
    today = timezone.localtime(now or timezone.now(), carpark.tz).date()
    return [h for h in forecast.hours if timezone.localtime(datetime.fromisoformat(h[0]), carpark.tz).date() == today]
