"""Staff pages: the live dashboard, its JSON snapshot, search, and the actions (acknowledge, open a barrier).

Every action checks the staff member's role at the object's car park; anything at a car park they are not assigned
to answers 404, exactly like something that does not exist (they learn nothing about other car parks).
"""

import contextlib

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseForbidden, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from apps.access import cameras
from apps.access import services as access
from apps.core.concurrency import run_sync
from apps.staff import selectors, services


async def _user(request):
    user = await request.auser()
    return user if user.is_authenticated else None


async def _allowed(user, carpark_id: int | None, roles: tuple[str, ...]) -> bool:
    if carpark_id is None:
        return False
    return carpark_id in await run_sync(selectors.carpark_ids_for_user, user_id=user.pk, roles=roles)


def _error(status: int, code: str, detail: str = "") -> JsonResponse:
    return JsonResponse({"error": code, "detail": detail}, status=status)


@login_required
@require_GET
async def dashboard(request):
    user = await request.auser()
    ids = await run_sync(selectors.carpark_ids_for_user, user_id=user.pk)
    tiles = await run_sync(selectors.carpark_tiles, carpark_ids=ids)
    mapping = set(await run_sync(selectors.carpark_ids_for_user, user_id=user.pk, roles=selectors.CAMERA_ROLES))
    for tile in tiles:
        tile["can_map_cameras"] = tile["id"] in mapping
    # `user` given explicitly: the template must not touch the lazy request.user (a sync query) in async code
    return render(request, "staff/dashboard.html", {"tiles": tiles, "user": user})


@require_GET
async def snapshot(request):
    """The same snapshot the WebSocket sends on connect (for scripts and for checking permissions)."""
    user = await _user(request)
    if user is None:
        return _error(401, "not_authenticated")
    ids = await run_sync(selectors.carpark_ids_for_user, user_id=user.pk)
    return JsonResponse({"carparks": await run_sync(selectors.dashboard_snapshot, carpark_ids=ids)})


@login_required
@require_GET
async def search(request):
    user = await request.auser()
    query = request.GET.get("q", "")[:64]
    results = None
    if query.strip():
        ids = await run_sync(selectors.carpark_ids_for_user, user_id=user.pk)
        results = await run_sync(selectors.search, query=query, carpark_ids=ids)
    return render(request, "staff/search.html", {"query": query, "results": results, "user": user})


@require_POST
async def alert_acknowledge(request, alert_id: int):
    user = await _user(request)
    if user is None:
        return _error(401, "not_authenticated")
    carpark_id = await run_sync(selectors.alert_carpark_id, alert_id=alert_id)
    if not await _allowed(user, carpark_id, selectors.DASHBOARD_ROLES):
        return _error(404, "not_found", "no such alert")
    await run_sync(access.alert_acknowledge, alert_id=alert_id, user=user)
    return JsonResponse({"id": alert_id, "acknowledged_by": user.get_username()})


@require_POST
async def barrier_open(request, lane_id: int):
    """Open a lane's barrier by hand: the controller's result arrives later as a `command` event."""
    user = await _user(request)
    if user is None:
        return _error(401, "not_authenticated")
    carpark_id = await run_sync(selectors.lane_carpark_id, lane_id=lane_id)
    if not await _allowed(user, carpark_id, selectors.BARRIER_ROLES):
        return _error(404, "not_found", "no such lane")
    reason = request.POST.get("reason", "").strip()[:200]
    if not reason:
        return _error(400, "reason_required", "say why the barrier is opened by hand")
    try:
        command = await run_sync(access.barrier_open_manual, lane_id=lane_id, user=user, reason=reason)
    except access.LaneOffline as exc:
        return _error(409, "lane_offline", str(exc) or "the lane's controller is offline")
    return JsonResponse({"command_id": command.command_id, "status": command.status, "lane_id": lane_id}, status=202)


@require_POST
async def camera_map(request, device_id):
    """A supervisor maps a vendor camera of a device to one of its lanes; the camera's kept reads are then decided."""
    user = await _user(request)
    if user is None:
        return _error(401, "not_authenticated")
    carpark_id = await run_sync(cameras.device_carpark_id, device_id=str(device_id))
    if not await _allowed(user, carpark_id, selectors.CAMERA_ROLES):
        return _error(404, "not_found", "no such device")
    camera, lane = request.POST.get("camera", "").strip()[:64], request.POST.get("lane", "").strip()
    if not camera or not lane:
        return _error(400, "bad_request", "say which camera and which lane")
    try:
        kept = await run_sync(
            cameras.device_camera_map, device_id=str(device_id), camera=camera, lane_code=lane, actor=user
        )
    except access.UnknownLane:
        return _error(400, "unknown_lane", f"lane {lane!r} is not one of this device's")
    return JsonResponse({"device": str(device_id), "camera": camera, "lane": lane, "kept": kept})


@login_required
async def lockouts(request):
    """Supervisors see the staff logins django-axes locks out and unlock an account or a client address."""
    user = await request.auser()
    if not await run_sync(selectors.carpark_ids_for_user, user_id=user.pk, roles=selectors.UNLOCK_ROLES):
        return HttpResponseForbidden("Only supervisors unlock logins.")
    if request.method == "POST":
        username = request.POST.get("username", "")[:150]
        ip_address = request.POST.get("ip_address", "")[:45]
        with contextlib.suppress(ValueError):  # neither or both given, or not an address: nothing to unlock
            await run_sync(services.login_lockout_clear, actor=user, username=username, ip_address=ip_address)
        return HttpResponseRedirect(reverse("dashboard-lockouts"))
    locked = await run_sync(selectors.login_lockouts)
    context = {"locked": locked, "limit": settings.AXES_FAILURE_LIMIT, "user": user}
    return render(request, "staff/lockouts.html", context)
