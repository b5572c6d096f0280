"""The daily revenue summary (RevenueDay): the ledger's figures per car park, date, channel, product and currency.

Same definitions as the revenue report (apps/insight/reports/revenue.py, whose WHERE and measures are reused);
past days are filled on first read and recomputed nightly for the last REVENUE_REFRESH_DAYS (a correction dated
back lands there; `insight_rebuild` for older ones). Today is always read from the ledger itself.
"""

from datetime import date

from django.db import connection, transaction
from django.utils import timezone

from apps.insight.models import RevenueDay
from apps.insight.reports.base import product_sql
from apps.insight.reports.revenue import MEASURES, WHERE, ledger_args

REVENUE_REFRESH_DAYS = 62

FILL = """
INSERT INTO insight_revenueday (carpark_id, date, channel, product, currency, net, vat, commission, refunds)
SELECT t.carpark_id, t.date, COALESCE(ag.code, b.source, '-'), {product}, t.currency, {measures}
{where}
GROUP BY 1, 2, 3, 4, 5
UNION ALL
SELECT cp, d::date, '', '-', '', 0, 0, 0, 0
FROM unnest(%(carparks)s::bigint[]) AS cp, generate_series(%(start)s::date, %(end)s::date, interval '1 day') AS d
"""


@transaction.atomic
def revenue_days_refresh(*, carpark_ids: list[int], start: date, end: date) -> int:
    """Recompute [start, end] (past days only); returns the rows written."""
    end = min(end, date.fromordinal(timezone.localdate().toordinal() - 1))
    if end < start:
        return 0
    RevenueDay.objects.filter(carpark_id__in=carpark_ids, date__gte=start, date__lte=end).delete()
    product = product_sql()
    where = WHERE.format(join=product[0] if product else "")
    sql = FILL.format(product=product[1] if product else "'-'", measures=MEASURES, where=where)
    with connection.cursor() as cursor:
        cursor.execute(sql, ledger_args(carpark_ids=carpark_ids, start=start, end=end))
        return cursor.rowcount


def revenue_days_fill(*, carpark_ids: list[int], start: date, end: date) -> None:
    """Summarise the past days of [start, end] not summarised yet (one refresh over the missing span)."""
    last = date.fromordinal(timezone.localdate().toordinal() - 1)
    end = min(end, last)
    if end < start:
        return
    wanted = (end - start).days + 1
    done = RevenueDay.objects.filter(carpark_id__in=carpark_ids, date__gte=start, date__lte=end, channel="")
    have: dict[int, set] = {}
    for carpark_id, day in done.values_list("carpark_id", "date"):
        have.setdefault(carpark_id, set()).add(day)
    for carpark_id in carpark_ids:
        days = have.get(carpark_id, set())
        if len(days) < wanted:
            missing = [date.fromordinal(start.toordinal() + i) for i in range(wanted)]
            missing = [d for d in missing if d not in days]
            revenue_days_refresh(carpark_ids=[carpark_id], start=missing[0], end=missing[-1])
