"""Where to find us, and the brand's policies."""

from django.conf import settings
from django.http import Http404

from apps.bookings.views.common import (
    _page,
    _site,
)


async def carpark(request, code: str):
    site = await _site(request)
    found = site.carpark(code)
    if found is None:
        raise Http404("We do not sell that car park")
    return _page(request, site, "site/carpark.html", {"carpark": found})


async def policy(request, slug: str):
    """The brand's terms, cancellation policy or privacy notice; one it has not written is not there."""
    site = await _site(request)
    found = next((p for p in site.brand.policies() if p.slug == slug), None)
    if found is None:
        raise Http404("No such page")
    context = {"policy": found}
    if slug == "privacy":  # how long each car park keeps what, from its settings (apps.customers.retention)
        context["retention"] = {"carparks": site.carparks, "raw_email_days": settings.RAW_EMAIL_RETENTION_DAYS}
    return _page(request, site, "site/policy.html", context)
