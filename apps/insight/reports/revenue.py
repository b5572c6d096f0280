"""Revenue by day, week or month and by channel or car park, read from the ledger (the books are the figures).

Per the chart of accounts (apps/accounting/chart.py): net = income accounts' credits (parking and overstay revenue,
less amendments and cancellations); VAT = credits to liability accounts other than commission payable on the same
postings (none until VAT is posted); commission = the commission expense; refunds = refunds paid. Agents' invoices
move receivables only and carry no car park, so they never count twice.
"""

from collections import defaultdict
from decimal import Decimal

from django.db import connection

from apps.accounting import chart
from apps.insight.reports.base import Chart, Params, Report, product_sql

ZERO = Decimal("0.00")
DIMENSIONS = {
    "channel": "COALESCE(ag.code, b.source, '-')",
    "carpark": "cp.code",
}
KINDS = ("booking", "payment", "refund", "overstay", "adjustment")

SQL = """
SELECT date_trunc(%(grain)s, t.date)::date AS period, {dim} AS dim, t.currency,
       -COALESCE(SUM(l.amount) FILTER (WHERE a.kind = 'income'), 0) AS net,
       -COALESCE(SUM(l.amount) FILTER (WHERE a.kind = 'liability' AND a.code <> %(payable)s), 0) AS vat,
       COALESCE(SUM(l.amount) FILTER (WHERE a.code = %(commission)s), 0) AS commission,
       COALESCE(SUM(l.amount) FILTER (WHERE t.kind = 'refund' AND a.code = %(receivables)s), 0) AS refunds
FROM accounting_ledgerline l
JOIN accounting_ledgertransaction t ON t.id = l.transaction_id
JOIN accounting_account a ON a.id = l.account_id
JOIN carparks_carpark cp ON cp.id = t.carpark_id
LEFT JOIN bookings_booking b ON b.id = COALESCE(l.booking_id, t.booking_id)
LEFT JOIN agents_agent ag ON ag.id = b.agent_id
{join}
WHERE t.date BETWEEN %(start)s AND %(end)s AND t.carpark_id = ANY(%(carparks)s) AND t.kind = ANY(%(kinds)s)
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
"""


def revenue_rows(params: Params) -> list[dict]:
    product = product_sql()
    if params.by == "product" and product:
        sql = SQL.format(dim=product[1], join=product[0])
    else:
        sql = SQL.format(dim=DIMENSIONS.get(params.by, DIMENSIONS["channel"]), join="")
    args = {
        "grain": params.group,
        "start": params.start,
        "end": params.end,
        "carparks": params.carpark_ids,
        "kinds": list(KINDS),
        "payable": chart.COMMISSION_PAYABLE,
        "commission": chart.COMMISSION_EXPENSE,
        "receivables": chart.BOOKING_RECEIVABLES,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, args)
        names = [c.name for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def revenue_report(params: Params) -> Report:
    rows = revenue_rows(params)
    periods = sorted({r["period"] for r in rows})
    dims = sorted({r["dim"] for r in rows})
    by_period: dict[str, dict] = defaultdict(dict)
    totals = defaultdict(lambda: ZERO)
    table = []
    for r in rows:
        gross = r["net"] + r["vat"]
        by_period[r["dim"]][r["period"]] = float(r["net"])
        table.append(
            [r["period"].isoformat(), r["dim"], r["currency"], r["net"], r["vat"], gross, r["commission"], r["refunds"]]
        )
        for key in ("net", "vat", "commission", "refunds"):
            totals[key] += r[key]
    table.append(
        ["Total", "", "", totals["net"], totals["vat"], totals["net"] + totals["vat"], totals["commission"],
         totals["refunds"]]
    )  # fmt: skip
    label = {"day": "%d %b", "week": "w/c %d %b", "month": "%b %Y"}[params.group]
    chart_ = Chart(
        kind="stacked",
        x_labels=[p.strftime(label) for p in periods],
        series=[(d, [by_period[d].get(p, 0.0) for p in periods]) for d in dims],
        y_title="Net revenue",
    )
    return Report(
        slug="revenue",
        title=f"Revenue by {params.group} and {params.by}",
        columns=["Period", params.by.capitalize(), "Currency", "Net", "VAT", "Gross", "Commission", "Refunds"],
        rows=table,
        chart=chart_,
        notes=["Read from the ledger: the same figures as the accounts for the same dates (accounting dates)."],
    )
