from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from apps.staff import selectors


@login_required
async def dashboard(request):
    user = await request.auser()
    ids = await sync_to_async(selectors.carpark_ids_for_user)(user_id=user.pk)
    tiles = await sync_to_async(selectors.carpark_tiles)(carpark_ids=ids)
    return render(request, "staff/dashboard.html", {"tiles": tiles})
