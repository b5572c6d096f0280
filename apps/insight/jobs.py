"""Insight's background work: the nightly forecasts (and one on demand), and the hourly occupancy summary.

Idempotent: a forecast refresh writes a new forecast (the newest is shown; an extra run only adds one), and the
summary refresh recomputes its hours from the source rows.
"""

from datetime import timedelta

from django.utils import timezone

from apps.carparks.models import CarPark
from apps.core.jobs import enqueue, job, periodic
from apps.insight import forecast
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


@periodic("insight.occupancy_refresh", minute={5})
def occupancy_refresh() -> None:
    """The trailing hours, where late exit reads, visits closed by staff and late cancellations still land."""
    end = floor_hour(timezone.now())
    for carpark_id in CarPark.objects.order_by("pk").values_list("pk", flat=True):
        occupancy_hours_refresh(carpark_id=carpark_id, start=end - timedelta(hours=REFRESH_HOURS), end=end)
