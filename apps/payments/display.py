"""What a lane's display shows (`/lanes/<lane>/display`): the held overstay's amount and its pay link as a QR code,
or a goodbye. One rendering for the page and for its live updates (consumers/lane_display.py)."""

import io
from collections.abc import Callable

import segno
from django.template.loader import render_to_string

from apps.payments import overstay


def _qr_svg(url: str) -> str:
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="svg", border=2, xmldecl=False, svgns=True, omitsize=True)
    return out.getvalue().decode()


def lane_display_context(*, lane_id: int, absolute: Callable[[str], str]) -> dict:
    """`absolute` makes a path absolute for this screen (a booking whose brand has no address of its own)."""
    link = overstay.lane_display_link(lane_id=lane_id)
    context = {"link": link, "lane_id": lane_id}
    if link is not None:
        url = overstay.pay_url(link)
        if url.startswith("/"):
            url = absolute(url)
        context |= {"pay_url": url, "qr": _qr_svg(url)}
    return context


def lane_display_state(*, lane_id: int, absolute: Callable[[str], str]) -> str:
    """The display's state as HTML (the part of the page that changes)."""
    return render_to_string(
        "payments/_lane_display_state.html", lane_display_context(lane_id=lane_id, absolute=absolute)
    )
