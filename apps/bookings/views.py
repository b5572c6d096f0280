"""Customer websites: the request's host picks the brand; a host that is no brand's gets 404."""

from asgiref.sync import sync_to_async
from django.http import Http404
from django.shortcuts import render

from apps.carparks.selectors import brand_for_host


async def home(request):
    brand = await sync_to_async(brand_for_host)(host=request.get_host())
    if brand is None:
        raise Http404("No site here")
    return render(request, "site/home.html", {"brand": brand})
