"""Charts as inline SVG, drawn server-side by pygal: they print, scale to a phone's width, and need no script.

pygal's interactive extras load a script from a CDN by default; `js=[]` turns them off (the page's CSP forbids
it anyway), so what is served is plain SVG. Every chart sits beside its table in the page.
"""

import pygal
from pygal.style import Style

from apps.insight.reports.base import Chart

STYLE = Style(
    background="white",
    plot_background="white",
    foreground="#1f2937",
    foreground_strong="#111827",
    foreground_subtle="#9ca3af",
    colors=("#1d4ed8", "#f59e0b", "#10b981", "#ef4444", "#7c3aed", "#0891b2", "#db2777", "#65a30d"),
    font_family="system-ui, sans-serif",
    label_font_size=11,
    major_label_font_size=11,
    legend_font_size=12,
)
MAX_X_LABELS = 16


def svg(chart: Chart, *, title: str = "") -> str:
    """The chart as an <svg> element (a string to embed in the page)."""
    kinds = {"line": pygal.Line, "bar": pygal.Bar, "stacked": pygal.StackedBar}
    options = {
        "style": STYLE,
        "js": [],
        "disable_xml_declaration": True,
        "width": 900,
        "height": 360,
        "explicit_size": False,
        "legend_at_bottom": True,
        "legend_at_bottom_columns": 4,
        "x_label_rotation": 30,
        "show_minor_x_labels": False,
        "y_title": chart.y_title,
        "title": title,
        "print_values": False,
        "margin": 8,
    }
    if chart.kind == "line":
        options.update(show_dots=len(chart.x_labels) <= 60, stroke_style={"width": 2}, fill=False)
    drawing = kinds[chart.kind](**options)
    drawing.x_labels = chart.x_labels
    step = max(1, len(chart.x_labels) // MAX_X_LABELS)
    drawing.x_labels_major = chart.x_labels[::step]
    for name, values in chart.series:
        drawing.add(name, values)
    if not chart.x_labels:
        drawing.no_data_text = "No data for this range"
    return drawing.render(is_unicode=True)
