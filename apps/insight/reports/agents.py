"""Agents per month: bookings made, cancellations, price amendments, no-show rate, revenue and commission.

Counts come from the bookings (made and cancelled in the month, in the car park's time; no-shows among the stays
due that month); money from the ledger, as in the revenue report. Amendments are the booking postings beyond
the sale and the cancellation: the amendments that changed the price (a change of dates at the same price posts
nothing and is not counted).
"""

from collections import defaultdict
from dataclasses import replace
from decimal import Decimal

from django.db import connection

from apps.agents.models import Agent
from apps.insight.reports.base import Chart, Params, Report
from apps.insight.reports.revenue import revenue_rows

COUNTS = """
SELECT ag.code, date_trunc('month', ts AT TIME ZONE cp.timezone)::date AS month, what, count(*)
FROM bookings_booking b JOIN agents_agent ag ON ag.id = b.agent_id JOIN carparks_carpark cp ON cp.id = b.carpark_id,
LATERAL (VALUES ('made', b.created_at), ('cancelled', CASE WHEN b.status = 'cancelled' THEN b.updated_at END),
                ('due', CASE WHEN b.status <> 'cancelled' AND b.arrival < now() THEN b.arrival END),
                ('no_show', CASE WHEN b.status = 'no_show' THEN b.arrival END)) AS e(what, ts)
WHERE b.carpark_id = ANY(%(carparks)s) AND ts IS NOT NULL
  AND (ts AT TIME ZONE cp.timezone)::date BETWEEN %(start)s AND %(end)s
  -- made, cancelled or due in the range: arriving from its start on (a booking is made and cancelled before its
  -- arrival), which bounds the scan by the (car park, arrival) index
  AND b.arrival >= %(start)s::date - interval '1 day'
GROUP BY 1, 2, 3
"""
# A booking's postings in order: the first is the sale, a last one that cancels it is the cancellation, the rest
# are amendments that changed its price.
AMENDMENTS = """
SELECT ag.code, date_trunc('month', x.date)::date, count(*)
FROM (
    SELECT t.date, t.booking_id, row_number() OVER w AS rn, count(*) OVER w AS n
    FROM accounting_ledgertransaction t
    WHERE t.kind = 'booking' AND t.carpark_id = ANY(%(carparks)s) AND t.date <= %(end)s
      AND t.booking_id IN (SELECT id FROM bookings_booking WHERE carpark_id = ANY(%(carparks)s)
                           AND arrival >= %(start)s::date - interval '31 days')
    WINDOW w AS (PARTITION BY t.booking_id ORDER BY t.id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
) x
JOIN bookings_booking b ON b.id = x.booking_id JOIN agents_agent ag ON ag.id = b.agent_id
WHERE x.rn > 1 AND NOT (b.status = 'cancelled' AND x.rn = x.n) AND x.date >= %(start)s
GROUP BY 1, 2
"""


def agents_report(params: Params) -> Report:
    args = {"carparks": params.carpark_ids, "start": params.start, "end": params.end}
    cells: dict = defaultdict(lambda: {"made": 0, "cancelled": 0, "due": 0, "no_show": 0})
    money: dict = {}
    with connection.cursor() as cursor:
        cursor.execute(COUNTS, args)
        for agent, month, what, n in cursor.fetchall():
            cells[(agent, month)][what] = n
        agent_codes = {code for code, _ in cells} | set(Agent.objects.values_list("code", flat=True))
        for r in revenue_rows(replace(params, group="month", by="channel")):  # the ledger's, via the summary
            if r["dim"] in agent_codes:
                money[(r["dim"], r["period"])] = (r["net"], r["commission"])
        cursor.execute(AMENDMENTS, args)
        amended = {(agent, month): n for agent, month, n in cursor.fetchall()}
    rows = []
    for key in sorted(set(cells) | set(money) | set(amended), key=lambda k: (k[1], k[0])):
        c = cells[key]
        revenue, commission = money.get(key, (Decimal("0.00"), Decimal("0.00")))
        amendments = amended.get(key, 0)
        rate = round(100 * c["no_show"] / c["due"], 1) if c["due"] else 0.0
        rows.append(
            [key[1].strftime("%Y-%m"), key[0], c["made"], c["cancelled"], amendments, c["due"], c["no_show"], rate,
             revenue, commission]
        )  # fmt: skip
    months = sorted({r[0] for r in rows})
    agents = sorted({r[1] for r in rows})
    index = {(r[0], r[1]): r for r in rows}
    chart_ = Chart(
        kind="bar",
        x_labels=months,
        series=[(a, [float(index[(m, a)][2]) if (m, a) in index else 0.0 for m in months]) for a in agents],
        y_title="Bookings made",
    )
    return Report(
        slug="agents",
        title="Agents per month",
        columns=[
            "Month",
            "Agent",
            "Bookings",
            "Cancellations",
            "Amendments",
            "Stays due",
            "No-shows",
            "No-show %",
            "Net revenue",
            "Commission",
        ],
        rows=rows,
        chart=chart_,
        notes=[
            "Amendments: postings that changed a booking's price (from the ledger). No-show %: of the stays due "
            "that month, not cancelled."
        ],
    )
