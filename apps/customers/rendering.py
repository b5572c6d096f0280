"""Rendering customers' messages: subject, plain text, HTML and attachments, branded, in the car park's timezone
and the brand's language.

Templates are rendered strictly: a variable that does not resolve raises MissingVariable instead of printing
nothing (Django's default), so a message never goes out with a hole in it, and a test of every kind catches a
template that names something the context lacks. The job then fails and the message stays pending (retried).
"""

from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache

import icalendar
from django.conf import settings
from django.template import Context, Engine
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from apps.bookings.models import Booking
from apps.carparks.models import Brand
from apps.carparks.selectors import carpark_brand

KINDS = ("confirmed", "amended", "cancelled", "reminder", "welcome_back", "overstay")


class MissingVariable(Exception):
    """A message template named a variable its context does not have."""


class _Strict(str):
    """Django formats `string_if_invalid` with the variable's name (`%s`): this raises instead."""

    def __mod__(self, name):
        raise MissingVariable(f"message template variable {name!r} is missing")

    def __contains__(self, item):
        return item == "%s"


@cache
def engine() -> Engine:
    from django.template.backends.django import get_installed_libraries

    dirs = [str(d) for d in settings.TEMPLATES[0]["DIRS"]]
    return Engine(dirs=dirs, app_dirs=True, libraries=get_installed_libraries(), string_if_invalid=_Strict("%s"))


@dataclass
class Rendered:
    subject: str
    text: str
    html: str
    attachments: list[tuple[str, bytes, str]] = field(default_factory=list)  # filename, content, mimetype
    sms: str = ""
    sender: Brand | None = None  # sender_brand's answer, asked once per message


def sender_brand(booking: Booking) -> Brand | None:
    """Who a message comes from: the booking's brand; for an agent's booking, the first brand selling its car park
    (the operator, as the customer will find it at the barrier and on the web)."""
    if booking.brand_id is not None:
        return booking.brand
    return carpark_brand(carpark_id=booking.carpark_id)


def subject_for(kind: str, booking: Booking, sender: Brand | None) -> str:
    brand = sender.name if sender else booking.carpark.name
    subjects = {
        "confirmed": _("%(brand)s: booking %(reference)s confirmed"),
        "amended": _("%(brand)s: booking %(reference)s changed"),
        "cancelled": _("%(brand)s: booking %(reference)s cancelled"),
        "reminder": _("%(brand)s: your parking tomorrow (%(reference)s)"),
        "welcome_back": _("%(brand)s: welcome back, your receipt for %(reference)s"),
        "overstay": _("%(brand)s: please pay for your extra time (%(reference)s)"),
    }
    return subjects[kind] % {"brand": brand, "reference": booking.reference}


def render(kind: str, booking: Booking, extra: dict) -> Rendered:
    """One message about `booking`: `extra` carries what the event adds (a refund, a pay link, a receipt)."""
    if kind not in KINDS:
        raise ValueError(f"unknown message kind {kind!r}")
    brand = sender_brand(booking)
    extra = {k: parse_datetime(v) if k.endswith("_at") and isinstance(v, str) else v for k, v in extra.items()}
    language = brand.language if brand else settings.LANGUAGE_CODE
    with timezone.override(booking.carpark.tz), translation.override(language):
        context = {
            "booking": booking,
            "brand": brand,
            "brand_name": brand.name if brand else booking.carpark.name,
            # an agent's customer changes or cancels through the agent (the brand's pages do not show the booking)
            "booked_with": booking.agent.name if booking.brand_id is None and booking.agent_id else "",
            "carpark": booking.carpark,
            "vehicles": [v.registration_raw for v in booking.vehicles.all()],
            "links": site_links(booking, brand),
            "extra": extra,
        }
        subject = subject_for(kind, booking, brand)
        text = engine().get_template(f"customers/messages/{kind}.txt").render(_context(context))
        html = engine().get_template(f"customers/messages/{kind}.html").render(_context(context | {"subject": subject}))
        sms = ""
        if kind in ("reminder", "overstay"):
            sms = engine().get_template(f"customers/messages/{kind}.sms.txt").render(_context(context)).strip()
    attachments = [("booking.ics", calendar_file(booking), "text/calendar")] if kind in ("confirmed", "amended") else []
    return Rendered(subject=subject, text=text, html=html, attachments=attachments, sms=sms, sender=brand)


def _context(values: dict) -> Context:
    return Context(values, autoescape=True)


def site_links(booking: Booking, brand: Brand | None) -> dict:
    """The sender brand's pages a message links to, absolute on its base URL (a job has no request to take a host
    from)."""
    if brand is None:
        return {"manage": "", "carpark": "", "policies": []}
    return {
        "manage": brand.link(reverse("site-manage")) if booking.brand_id is not None else "",
        "carpark": brand.link(reverse("site-carpark", args=[booking.carpark.code])),
        "policies": [(_(p.title), brand.link(reverse(f"site-{p.slug}"))) for p in brand.policies()],
    }


def calendar_file(booking: Booking) -> bytes:
    """The stay as a calendar event (RFC 5545), in UTC: calendars show it in the reader's own zone."""
    cal = icalendar.Calendar()
    cal.add("prodid", "-//Parkgate//Bookings//EN")
    cal.add("version", "2.0")
    cal.add("method", "PUBLISH")
    event = icalendar.Event()
    event.add("uid", f"{booking.reference}@parkgate")
    event.add("dtstamp", timezone.now())
    event.add("sequence", int(booking.updated_at.timestamp()) if booking.updated_at else 0)
    event.add("summary", _("Parking at %(carpark)s (%(reference)s)") % {
        "carpark": booking.carpark.name, "reference": booking.reference
    })  # fmt: skip
    event.add("dtstart", booking.arrival)
    event.add("dtend", max(booking.departure, booking.arrival + timedelta(minutes=1)))
    if booking.carpark.address:
        event.add("location", booking.carpark.address_line)
    cal.add_component(event)
    return cal.to_ical()
