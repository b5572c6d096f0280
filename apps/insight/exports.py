"""A report's table as CSV or XLSX (openpyxl, write-only: rows stream into the workbook)."""

import csv
import io
from decimal import Decimal

from openpyxl import Workbook

from apps.insight.reports.base import Report


def _cell(value):
    return float(value) if isinstance(value, Decimal) else value


def report_csv(report: Report) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(report.columns)
    writer.writerows(report.rows)
    for title, columns, rows in report.extra_tables:
        writer.writerow([])
        writer.writerow([title])
        writer.writerow(columns)
        writer.writerows(rows)
    return buffer.getvalue()


def report_xlsx(report: Report) -> bytes:
    book = Workbook(write_only=True)
    sheets = [(report.title, report.columns, report.rows), *report.extra_tables]
    for title, columns, rows in sheets:
        sheet = book.create_sheet(title=_sheet_name(title))
        sheet.append(columns)
        for row in rows:
            sheet.append([_cell(v) for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _sheet_name(title: str) -> str:
    cleaned = "".join(c for c in title if c not in "[]:*?/\\")
    return cleaned[:31] or "Report"
