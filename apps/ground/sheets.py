"""The shift sheet as a print-ready PDF: the same data as the phone page, laid out for A4 by WeasyPrint (HTML and CSS
to PDF with Pango, a well-kept library: no drawing code of our own)."""

from django.template.loader import render_to_string
from django.utils import timezone


def shift_sheet_pdf(sheet: dict, *, base_url: str) -> bytes:
    from weasyprint import HTML  # imported on use: it loads Pango, which no other request needs

    with timezone.override(sheet["tz"]):
        html = render_to_string("ground/sheet_print.html", sheet)
    return HTML(string=html, base_url=base_url).write_pdf()
