"""Insight's own rows: the forecasts it made, the overbooking allowances staff accepted, the hourly summary the
occupancy report reads, and which days of demo history were seeded."""

from django.conf import settings
from django.db import models


class Forecast(models.Model):
    """One forecast of a car park's occupancy, hour by hour, as made at `made_at` (the newest one is shown).

    `hours` holds [hour (ISO, UTC), expected, low, high] rows (80% interval); `learned` the per-channel figures
    the forecast used; `backtest` the error per horizon. Kept whole: a forecast is read whole, never queried into.
    """

    carpark = models.ForeignKey("carparks.CarPark", related_name="+", on_delete=models.CASCADE)
    made_at = models.DateTimeField(db_index=True)
    has_history = models.BooleanField(default=True)
    hours = models.JSONField(default=list)
    learned = models.JSONField(default=dict)
    backtest = models.JSONField(default=dict)
    recommendations = models.JSONField(default=list, help_text="[date, channel, spaces] at the risk target")
    risk = models.FloatField(help_text="The accepted chance of a full car park on a day, e.g. 0.005 = 1 in 200 days")

    class Meta:
        indexes = [models.Index(fields=["carpark", "-made_at"], name="forecast_latest")]

    def __str__(self) -> str:
        return f"forecast {self.carpark_id} {self.made_at:%Y-%m-%d %H:%M}"


class OverbookingAllowance(models.Model):
    """Spaces a channel may sell beyond capacity on a day, accepted by a person (nothing oversells without one).

    The allocation (products issue) reads the accepted allowance through
    `apps.products.holds.allowances` (answered by apps.insight.receivers); it is written only by
    `overbooking_allowance_accept`.
    """

    carpark = models.ForeignKey("carparks.CarPark", related_name="+", on_delete=models.CASCADE)
    date = models.DateField()
    channel = models.CharField(max_length=40, help_text="web, staff, or an agent's code")
    spaces = models.PositiveIntegerField()
    risk = models.FloatField()
    forecast = models.ForeignKey(Forecast, null=True, blank=True, related_name="+", on_delete=models.SET_NULL)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="+", on_delete=models.PROTECT)
    accepted_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["carpark", "date", "channel"], name="overbooking_allowance_unique")
        ]

    def __str__(self) -> str:
        return f"{self.carpark_id} {self.date} {self.channel}: +{self.spaces}"


class OccupancyHour(models.Model):
    """Per car park and hour (UTC): bookings holding a place and vehicles on site, counted at the hour's start.

    A summary for the reports, which would otherwise scan every visit of the range: rebuilt for closed hours by
    `occupancy_hours_refresh` (hourly job, and for any range on demand); `tests/insight` rebuilds and compares.
    """

    carpark = models.ForeignKey("carparks.CarPark", related_name="+", on_delete=models.CASCADE)
    hour = models.DateTimeField()
    booked = models.IntegerField(default=0)
    on_site = models.IntegerField(default=0)
    entries = models.IntegerField(default=0)
    exits = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["carpark", "hour"], name="occupancy_hour_unique")]

    def __str__(self) -> str:
        return f"{self.carpark_id} {self.hour:%Y-%m-%d %H}: {self.on_site}/{self.booked}"


class RevenueDay(models.Model):
    """Per car park, accounting date, channel, product and currency: the ledger's revenue figures of that day.

    A summary for the revenue and agents reports, which would otherwise sum every ledger line of the range. Only
    past days are stored (today is read live); each summarised day has a marker row (channel "") so that a day
    without postings is known to be done. The ledger is append-only and dated on the day of the event, so a past
    day changes only by a correction dated back: the nightly job recomputes the last REVENUE_REFRESH_DAYS, and
    `insight_rebuild` any range. See apps/insight/revenue_summary.py.
    """

    carpark = models.ForeignKey("carparks.CarPark", related_name="+", on_delete=models.CASCADE)
    date = models.DateField()
    channel = models.CharField(max_length=40, blank=True)
    product = models.CharField(max_length=64, default="-")
    currency = models.CharField(max_length=3, blank=True)
    net = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    vat = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    commission = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    refunds = models.DecimalField(max_digits=14, decimal_places=2, default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["carpark", "date", "channel", "product", "currency"], name="revenue_day_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.carpark_id} {self.date} {self.channel or '(marker)'}: {self.net}"


class HistoryDay(models.Model):
    """A car park's arrival date for which `seed_demo --history` generated bookings (so a re-run adds nothing)."""

    carpark = models.ForeignKey("carparks.CarPark", related_name="+", on_delete=models.CASCADE)
    date = models.DateField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["carpark", "date"], name="history_day_unique")]

    def __str__(self) -> str:
        return f"{self.carpark_id} {self.date}"
