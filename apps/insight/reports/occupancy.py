"""Occupancy per hour of one car park: bookings holding a place versus vehicles on site (visits), peak per day."""

from collections import defaultdict

from django.utils import timezone

from apps.insight.reports.base import Chart, Params, Report
from apps.insight.summary import occupancy_hours


def occupancy_report(params: Params) -> Report:
    carpark = params.carparks[0]
    start, end = params.utc_bounds(carpark)
    counts = occupancy_hours(carpark=carpark, start=start, end=end)
    tz = carpark.tz
    rows, labels = [], []
    days: dict = defaultdict(lambda: {"peak": -1, "at": "", "booked": 0, "entries": 0, "exits": 0})
    for i, hour in enumerate(counts["hours"]):
        local = timezone.localtime(hour, tz)
        booked, on_site = int(counts["booked"][i]), int(counts["on_site"][i])
        entries, exits = int(counts["entries"][i]), int(counts["exits"][i])
        rows.append([local.strftime("%Y-%m-%d %H:%M"), booked, on_site, entries, exits])
        labels.append(local.strftime("%d %b %H:%M"))
        day = days[local.date()]
        if on_site > day["peak"]:
            day["peak"], day["at"] = on_site, local.strftime("%H:%M")
        day["booked"] = max(day["booked"], booked)
        day["entries"] += entries
        day["exits"] += exits
    daily = [
        [d.isoformat(), v["peak"], v["at"], v["booked"], carpark.capacity, v["entries"], v["exits"]]
        for d, v in sorted(days.items())
    ]
    chart = Chart(
        kind="line",
        x_labels=labels,
        series=[
            ("Booked", [float(x) for x in counts["booked"]]),
            ("On site", [float(x) for x in counts["on_site"]]),
            ("Capacity", [float(carpark.capacity)] * len(labels)),
        ],
        y_title="Vehicles",
    )
    return Report(
        slug="occupancy",
        title=f"Occupancy per hour at {carpark.code}",
        columns=["Hour (local)", "Booked", "On site", "Entries", "Exits"],
        rows=rows,
        chart=chart,
        notes=[
            "Counted at the start of each hour: bookings not cancelled whose stay spans it, and vehicles inside "
            "(entered, not yet left), whether booked or not."
        ],
        extra_tables=[
            (
                "Peak per day",
                ["Date", "Peak on site", "At", "Peak booked", "Capacity", "Entries", "Exits"],
                daily,
            )
        ],
    )
