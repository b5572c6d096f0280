"""Revenue by day, week or month and by channel or car park, read from the ledger (the books are the figures).

Per the chart of accounts (apps/accounting/chart.py): net = income accounts' credits (parking and overstay revenue,
less amendments and cancellations); VAT = credits to liability accounts other than commission payable on the same
postings (none until VAT is posted); commission = the commission expense; refunds = refunds paid. Agents' invoices
move receivables only and carry no car park, so they never count twice.
"""

from collections import defaultdict
from datetime import date
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from apps.accounting import chart
from apps.insight.reports.base import Chart, Params, Report, product_sql

ZERO = Decimal("0.00")
DIMENSIONS = {
    "channel": "COALESCE(ag.code, b.source, '-')",
    "carpark": "cp.code",
}  # and "product" once bookings carry one (base.product_sql)
KINDS = ("booking", "payment", "refund", "overstay", "adjustment")

MEASURES = """
       -COALESCE(SUM(l.amount) FILTER (WHERE a.kind = 'income'), 0),
       -COALESCE(SUM(l.amount) FILTER (WHERE a.kind = 'liability' AND a.code <> %(payable)s), 0),
       COALESCE(SUM(l.amount) FILTER (WHERE a.code = %(commission)s), 0),
       COALESCE(SUM(l.amount) FILTER (WHERE t.kind = 'refund' AND a.code = %(receivables)s), 0)
"""
WHERE = """
FROM accounting_ledgerline l
JOIN accounting_ledgertransaction t ON t.id = l.transaction_id
JOIN accounting_account a ON a.id = l.account_id
JOIN carparks_carpark cp ON cp.id = t.carpark_id
LEFT JOIN bookings_booking b ON b.id = COALESCE(l.booking_id, t.booking_id)
LEFT JOIN agents_agent ag ON ag.id = b.agent_id
{join}
WHERE t.date BETWEEN %(start)s AND %(end)s AND t.carpark_id = ANY(%(carparks)s) AND t.kind = ANY(%(kinds)s)
"""
# Today (and anything not summarised) straight from the ledger.
LIVE = "SELECT date_trunc(%(grain)s, t.date)::date, {dim}, t.currency, {measures} {where} GROUP BY 1, 2, 3"
# Past days from the daily summary (apps/insight/revenue_summary.py).
SUMMARY = """
SELECT date_trunc(%(grain)s, r.date)::date, {dim}, r.currency, SUM(r.net), SUM(r.vat), SUM(r.commission),
       SUM(r.refunds)
FROM insight_revenueday r JOIN carparks_carpark cp ON cp.id = r.carpark_id
WHERE r.channel <> '' AND r.date BETWEEN %(start)s AND %(end)s AND r.carpark_id = ANY(%(carparks)s)
GROUP BY 1, 2, 3
"""
SUMMARY_DIMENSIONS = {"channel": "r.channel", "carpark": "cp.code", "product": "r.product"}


def ledger_args(*, carpark_ids: list[int], start: date, end: date, grain: str = "day") -> dict:
    return {
        "grain": grain,
        "start": start,
        "end": end,
        "carparks": carpark_ids,
        "kinds": list(KINDS),
        "payable": chart.COMMISSION_PAYABLE,
        "commission": chart.COMMISSION_EXPENSE,
        "receivables": chart.BOOKING_RECEIVABLES,
    }


def revenue_rows(params: Params, *, summary: bool = True) -> list[dict]:
    """Rows of (period, dim, currency, net, vat, commission, refunds): past days from the summary, today live."""
    from apps.insight.revenue_summary import revenue_days_fill  # the summary module reuses this one's SQL

    product = product_sql()
    by = params.by if params.by in DIMENSIONS or (params.by == "product" and product) else "channel"
    today = timezone.localdate()
    parts = []
    if summary and params.start < today:
        past_end = min(params.end, date.fromordinal(today.toordinal() - 1))
        revenue_days_fill(carpark_ids=params.carpark_ids, start=params.start, end=past_end)
        args = ledger_args(carpark_ids=params.carpark_ids, start=params.start, end=past_end, grain=params.group)
        parts.append((SUMMARY.format(dim=SUMMARY_DIMENSIONS[by]), args))
        live_start = today
    else:
        live_start = params.start
    if params.end >= live_start:
        dim = product[1] if by == "product" else DIMENSIONS[by]
        where = WHERE.format(join=product[0] if product else "")
        args = ledger_args(carpark_ids=params.carpark_ids, start=live_start, end=params.end, grain=params.group)
        parts.append((LIVE.format(dim=dim, measures=MEASURES, where=where), args))
    totals: dict[tuple, list] = {}
    with connection.cursor() as cursor:
        for sql, args in parts:
            cursor.execute(sql, args)
            for period, dim, currency, *money in cursor.fetchall():
                cell = totals.setdefault((period, dim, currency), [ZERO] * 4)
                for i, value in enumerate(money):
                    cell[i] += value
    return [
        {"period": k[0], "dim": k[1], "currency": k[2], "net": v[0], "vat": v[1], "commission": v[2], "refunds": v[3]}
        for k, v in sorted(totals.items())
    ]


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
