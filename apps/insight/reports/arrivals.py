"""Arrivals and departures against bookings, per channel: on time, early, late, no-show, overstay, average stay; and
the unknown vehicles turned away at each lane."""

from datetime import timedelta

from django.db import connection

from apps.insight.reports.base import Chart, Params, Report, product_sql

ON_TIME_MIN = 30  # an arrival within half an hour of the booked time is on time

SQL = """
SELECT {channel} AS channel,
       count(*) AS bookings,
       count(*) FILTER (WHERE v.id IS NULL AND b.status IN ('no_show', 'confirmed')) AS no_show,
       count(*) FILTER (WHERE v.entered_at < b.arrival - %(tol)s) AS early,
       count(*) FILTER (WHERE v.entered_at BETWEEN b.arrival - %(tol)s AND b.arrival + %(tol)s) AS on_time,
       count(*) FILTER (WHERE v.entered_at > b.arrival + %(tol)s) AS late,
       count(*) FILTER (WHERE v.overstay_minutes > 0) AS overstay,
       avg(extract(epoch FROM v.exited_at - v.entered_at)) / 3600 AS avg_stay_h,
       avg(extract(epoch FROM v.entered_at - b.arrival)) / 60 AS avg_arrival_offset_min,
       avg(extract(epoch FROM v.exited_at - b.departure)) / 60 AS avg_departure_offset_min
FROM bookings_booking b
LEFT JOIN agents_agent ag ON ag.id = b.agent_id
{join}
LEFT JOIN LATERAL (
    SELECT id, entered_at, exited_at, overstay_minutes FROM access_visit
    WHERE booking_id = b.id ORDER BY entered_at LIMIT 1
) v ON true
WHERE b.carpark_id = %(cp)s AND b.arrival >= %(s)s AND b.arrival < %(e)s AND b.arrival < now()
  AND b.status <> 'cancelled'
GROUP BY 1 ORDER BY 1
"""
TURNED_AWAY = """
SELECT l.code, count(*) FROM access_plateread r JOIN carparks_lane l ON l.id = r.lane_id
WHERE r.carpark_id = %(cp)s AND r.received_at >= %(s)s AND r.received_at < %(e)s
  AND r.action = 'deny' AND r.reason = 'unknown_vehicle'
GROUP BY 1 ORDER BY 1
"""


def _pct(part: int, whole: int) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


def arrivals_report(params: Params) -> Report:
    carpark = params.carparks[0]
    start, end = params.utc_bounds(carpark)
    args = {"cp": carpark.pk, "s": start, "e": end, "tol": timedelta(minutes=ON_TIME_MIN)}
    product = product_sql()  # per channel and product once bookings carry products
    channel = "COALESCE(ag.code, b.source)"
    sql = SQL.format(channel=f"{channel} || ' / ' || {product[1]}" if product else channel,
                     join=product[0] if product else "")  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(sql, args)
        data = cursor.fetchall()
        cursor.execute(TURNED_AWAY, args)
        lanes = [list(r) for r in cursor.fetchall()]
    rows = []
    for ch, n, no_show, early, on_time, late, overstay, stay, arr, dep in data:
        rows.append(
            [ch, n, on_time, early, late, no_show, _pct(no_show, n), overstay,
             round(float(stay or 0), 1), round(float(arr or 0)), round(float(dep or 0))]
        )  # fmt: skip
    chart = Chart(
        kind="stacked",
        x_labels=[r[0] for r in rows],
        series=[
            ("On time", [float(r[2]) for r in rows]),
            ("Early", [float(r[3]) for r in rows]),
            ("Late", [float(r[4]) for r in rows]),
            ("No-show", [float(r[5]) for r in rows]),
        ],
        y_title="Bookings due",
    )
    return Report(
        slug="arrivals",
        title=f"Arrivals and departures against bookings at {carpark.code}",
        columns=[
            "Channel",
            "Bookings due",
            "On time",
            "Early",
            "Late",
            "No-show",
            "No-show %",
            "Overstay",
            "Average stay (h)",
            "Average arrival offset (min)",
            "Average departure offset (min)",
        ],
        rows=rows,
        chart=chart,
        notes=[f"On time: entered within {ON_TIME_MIN} minutes of the booked arrival. Bookings due = not cancelled."],
        extra_tables=[("Turned-away reads (unknown vehicles) per lane", ["Lane", "Reads"], lanes)],
    )
