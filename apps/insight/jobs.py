"""Insight's background work: the nightly forecasts (and one on demand), the hourly occupancy summary and the
nightly revenue summary.

Idempotent: a forecast refresh writes a new forecast (the newest is shown; an extra run only adds one), and the
summary refresh recomputes its hours from the source rows.
"""

from datetime import timedelta

from django.utils import timezone

from apps.carparks.models import CarPark
from apps.core.jobs import enqueue, job, periodic
from apps.insight import forecast
from apps.insight.revenue_summary import REVENUE_REFRESH_DAYS, revenue_days_refresh
from apps.insight.summary import REFRESH_HOURS, floor_hour, occupancy_hours_refresh


@periodic("insight.nightly_forecasts", hour={3}, minute={30})
def nightly_forecasts() -> None:
    for carpark_id in CarPark.objects.order_by("pk").values_list("pk", flat=True):
        day = timezone.localdate().isoformat()
        enqueue(
            "insight.forecast_refresh", job_id=f"insight.forecast_refresh:{carpark_id}:{day}", carpark_id=carpark_id
        )


@job("insight.forecast_refresh")
def forecast_refresh(*, carpark_id: int, risk: float | None = None) -> None:
    forecast.forecast_refresh(carpark_id=carpark_id, risk=risk)


@periodic("insight.revenue_refresh", hour={2}, minute={45})
def revenue_refresh() -> None:
    """The daily revenue summary's recent past, where a correction dated back may still land."""
    today = timezone.localdate()
    carpark_ids = list(CarPark.objects.order_by("pk").values_list("pk", flat=True))
    revenue_days_refresh(carpark_ids=carpark_ids, start=today - timedelta(days=REVENUE_REFRESH_DAYS), end=today)


@periodic("insight.occupancy_refresh", minute={5})
def occupancy_refresh() -> None:
    """The trailing hours, where late exit reads, visits closed by staff and late cancellations still land."""
    end = floor_hour(timezone.now())
    for carpark_id in CarPark.objects.order_by("pk").values_list("pk", flat=True):
        occupancy_hours_refresh(carpark_id=carpark_id, start=end - timedelta(hours=REFRESH_HOURS), end=end)
