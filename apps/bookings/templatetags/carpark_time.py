"""`{{ booking.arrival|carpark_time }}`: Sun 31 Oct 2027, 01:30 GMT, in the current timezone, which the site's pages
and emails set to the car park's. The zone is named even on the night the clocks go back, when the date filter's "T"
is blank, because there it is what tells the two 01:30s apart."""

from django import template
from django.utils import dateformat, timezone

register = template.Library()


@register.filter
def carpark_time(value) -> str:
    if value is None:
        return ""
    local = timezone.localtime(value)
    return f"{dateformat.format(local, 'D j M Y, H:i')} {local.tzname()}"
