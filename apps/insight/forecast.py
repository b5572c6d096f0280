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
from apps.insight import learning, model
from apps.insight.models import Forecast
from apps.insight.reports.base import Chart
from apps.insight.summary import floor_hour, occupancy_hours

HORIZON_DAYS = 30
BACKTEST_DAYS = 14
BACKTEST_HORIZONS = (1, 3, 7, 14, 28)
Z80 = NormalDist().inv_cdf(0.9)
DEFAULT_RISK = 1 / 200
KEEP_DAYS = 31


def _local_midnight(carpark: CarPark, day) -> datetime:
    return datetime.combine(day, time(), tzinfo=carpark.tz)


def _actual(carpark: CarPark, start: datetime, end: datetime) -> dict[float, int]:
    counts = occupancy_hours(carpark=carpark, start=start, end=end)
    return {h.timestamp(): int(v) for h, v in zip(counts["hours"], counts["on_site"], strict=True)}


def _learn(carpark: CarPark, *, until: datetime, pickup_days: list) -> tuple[dict, np.ndarray]:
    """Habits from the LEARN_DAYS before `until`, and pickup factors over `pickup_days` (complete days before it)."""
    habits = learning.habits_learn(
        learning.stays_load(
            carpark_id=carpark.pk, since=until - timedelta(days=learning.LEARN_DAYS), until=until, made_by=until
        ),
        until=until,
    )
    if learning.POOLED not in habits or not pickup_days:
        return habits, np.ones(len(model.PICKUP_HORIZONS))
    first = _local_midnight(carpark, pickup_days[0])
    end = _local_midnight(carpark, pickup_days[-1] + timedelta(days=1))
    stays = learning.stays_load(carpark_id=carpark.pk, since=first, until=end, made_by=end)
    factors = model.pickup_learn(carpark, stays, habits, days=pickup_days, actual=_actual(carpark, first, end))
    return habits, factors


def backtest(carpark: CarPark, *, now: datetime) -> dict:
    """Error per horizon of forecasts replayed over the last BACKTEST_DAYS complete days, learned only from the
    days before them (habits until the first as-of, pickup over the PICKUP_DAYS before the window)."""
    today = timezone.localtime(now, carpark.tz).date()
    days = [today - timedelta(days=i) for i in range(BACKTEST_DAYS, 0, -1)]
    first, window_end = _local_midnight(carpark, days[0]), _local_midnight(carpark, today)
    pickup_days = [days[0] - timedelta(days=i) for i in range(model.PICKUP_DAYS, 0, -1)]
    habits, factors = _learn(carpark, until=first - timedelta(days=max(BACKTEST_HORIZONS)), pickup_days=pickup_days)
    if learning.POOLED not in habits:
        return {}
    stays = learning.stays_load(carpark_id=carpark.pk, since=first, until=window_end, made_by=window_end)
    actual_by_hour = _actual(carpark, first, window_end)
    out = {}
    for horizon in BACKTEST_HORIZONS:
        errors, covered, bias = [], 0, 0.0
        for day in days:
            hours = model.day_hours(carpark, day)
            as_of = hours[0] - horizon * 86400
            mean, var = model.expected_on_site(stays, habits, as_of=as_of, hours=hours)
            factor = model.pickup_at(factors, (hours - as_of) / 86400)
            mean, spread = mean * factor, Z80 * np.sqrt(var * factor)
            truth = np.array([actual_by_hour.get(h, 0) for h in hours])
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
    latest = forecast_latest(carpark_id=carpark.pk)
    risk = risk or (latest.risk if latest else DEFAULT_RISK)  # the operator's last choice holds for the nightly run
    today = timezone.localtime(now, carpark.tz).date()
    pickup_days = [today - timedelta(days=i) for i in range(model.PICKUP_DAYS, 0, -1)]
    habits, factors = _learn(carpark, until=now, pickup_days=pickup_days)
    start = floor_hour(now)
    end = start + timedelta(days=HORIZON_DAYS)
    hours = np.array([(start + timedelta(hours=i)).timestamp() for i in range(HORIZON_DAYS * 24)])
    stays = learning.stays_load(carpark_id=carpark.pk, since=start, until=end, made_by=now)
    mean, var = model.expected_on_site(stays, habits, as_of=now.timestamp(), hours=hours)
    ahead = (hours - now.timestamp()) / 86400
    factor = model.pickup_at(factors, ahead)
    mean, var = mean * factor, var * factor
    tested = backtest(carpark, now=now) if learning.POOLED in habits else {}
    sd = np.maximum(np.sqrt(var), _rmse_at(tested, ahead))
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
        learned={
            **{channel: h.summary() for channel, h in habits.items()},
            "pickup": {str(int(d)): round(float(f), 3) for d, f in zip(model.PICKUP_HORIZONS, factors, strict=True)},
        },
        backtest=tested,
        risk=risk,
    )
    # a month of old forecasts is plenty (accepted allowances keep their figures; the audit log names the forecast)
    Forecast.objects.filter(carpark=carpark, made_at__lt=now - timedelta(days=KEEP_DAYS)).delete()
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
        "learned": sorted((k, v) for k, v in forecast.learned.items() if k != "pickup"),
        "pickup": sorted(forecast.learned.get("pickup", {}).items(), key=lambda kv: int(kv[0])),
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
