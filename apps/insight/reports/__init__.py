"""The reports: each a function of Params returning a Report (columns, rows, a chart, notes)."""

from apps.insight.reports.agents import agents_report
from apps.insight.reports.arrivals import arrivals_report
from apps.insight.reports.base import BadRange, Chart, Params, Report, choice, parse_range, product_sql
from apps.insight.reports.occupancy import occupancy_report
from apps.insight.reports.revenue import revenue_report

__all__ = ["BadRange", "Chart", "Params", "Report", "choice", "parse_range", "product_sql"]


# slug -> (title, function, one car park only, default days, max days)
REPORTS = {
    "revenue": ("Revenue", revenue_report, False, 30, 731),
    "occupancy": ("Occupancy per hour", occupancy_report, True, 7, 62),
    "arrivals": ("Arrivals and departures", arrivals_report, True, 30, 366),
    "agents": ("Agents", agents_report, False, 90, 731),
}
