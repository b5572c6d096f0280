"""Pages for the ground: the driver's phone page (next tasks, start and finish with one tap, the key tag, condition
photos), staff assigning tasks, the keys out, and the shift sheet (a phone page and a print-ready PDF).

Each page checks the user's role at the task's car park; elsewhere it answers 404, as for something that does not
exist. The work runs in a pooled thread (run_sync), one service call per action."""

from functools import wraps
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from apps.carparks.models import CarPark
from apps.core.concurrency import run_sync
from apps.ground import keys, photos, selectors, sheets, tasks
from apps.ground.models import ConditionPhoto

STAFF_ROLES = ("operator", "supervisor")
ALL_ROLES = ("operator", "supervisor", "driver")


def _in_thread(func):
    """An async view running `func(request, user, ...)` in a pooled thread, for logged-in users."""

    @login_required
    @wraps(func)
    async def view(request, *args, **kwargs):
        user = await request.auser()
        return await run_sync(func, request, user, *args, **kwargs)

    return view


def _task_or_404(task_id: int, user, roles=selectors.DRIVER_ROLES) -> dict:
    task = selectors.task_for_user(task_id=task_id, user_id=user.pk, roles=roles)
    if task is None:
        raise Http404("no such task")
    return task


@require_GET
@_in_thread
def driver_page(request, user):
    if not selectors.carpark_ids_for(user_id=user.pk, roles=selectors.DRIVER_ROLES):
        raise Http404("not a driver")
    data = selectors.driver_tasks(user_id=user.pk)
    return render(request, "ground/driver.html", {**data, "message": request.GET.get("m", "")})


@require_GET
@_in_thread
def task_page(request, user, task_id: int):
    task = _task_or_404(task_id, user)
    context = {"task": task, "angles": ConditionPhoto.Angle.choices, "error": request.GET.get("e", "")}
    return render(request, "ground/task.html", context)


def _back(task_id: int, error: str = "") -> HttpResponseRedirect:
    url = reverse("ground-task", args=[task_id])
    if error:
        url += "?" + urlencode({"e": error})
    return HttpResponseRedirect(url)


@require_POST
@_in_thread
def task_action(request, user, task_id: int, action: str):
    _task_or_404(task_id, user)
    try:
        if action == "start":
            tasks.task_start(task_id=task_id, driver=user)
        elif action == "finish":
            tasks.task_finish(task_id=task_id, driver=user)
            return HttpResponseRedirect(reverse("ground-driver") + "?m=Task+finished")
        elif action == "problem":
            tasks.task_problem(task_id=task_id, driver=user, note=request.POST.get("note", ""))
        elif action == "take":
            tasks.task_assign(task_id=task_id, driver=user, actor=user)
        else:
            raise Http404("no such action")
    except tasks.TaskRefused as exc:
        return _back(task_id, str(exc))
    return _back(task_id)


@require_POST
@_in_thread
def task_key(request, user, task_id: int):
    task = _task_or_404(task_id, user)
    if task["driver_id"] != user.pk:
        return _back(task_id, "take the task first")
    to_safe = request.POST.get("slot", "").strip()
    try:
        keys.key_tag_move(
            carpark_id=task["carpark_id"], number=request.POST.get("number", ""), actor=user,
            to_slot=to_safe, to_driver=None if to_safe else user, task_id=task_id,
        )  # fmt: skip
    except keys.KeyRefused as exc:
        return _back(task_id, str(exc))
    return _back(task_id)


@require_POST
@_in_thread
def task_photo(request, user, task_id: int):
    _task_or_404(task_id, user)
    try:
        if int(request.META.get("CONTENT_LENGTH") or 0) > photos.MAX_BYTES + 64 * 1024:  # before parsing the upload
            raise photos.PhotoRefused(photos.TOO_BIG)
        photos.condition_photo_add(
            task_id=task_id, angle=request.POST.get("angle", ""), upload=request.FILES.get("photo"), driver=user
        )
    except photos.PhotoRefused as exc:
        response = render(
            request,
            "ground/task.html",
            {"task": _task_or_404(task_id, user), "angles": ConditionPhoto.Angle.choices, "error": str(exc)},
            status=400,
        )
        return response
    return _back(task_id)


@require_GET
@_in_thread
def photo_file(request, user, photo_id: int):
    photo = selectors.photo_for_user(photo_id=photo_id, user_id=user.pk, roles=ALL_ROLES)
    if photo is None:
        raise Http404("no such photo")
    response = FileResponse(photo.image.open("rb"), content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@require_POST
@_in_thread
def task_assign(request, user, task_id: int):
    """Staff give a task to a driver (by username)."""
    task = _task_or_404(task_id, user, roles=STAFF_ROLES)
    driver = get_user_model().objects.filter(username=request.POST.get("driver", "").strip()).first()
    if driver is None:
        return HttpResponse("no such driver", status=400)
    try:
        tasks.task_assign(task_id=task["id"], driver=driver, actor=user)
    except tasks.TaskRefused as exc:
        return HttpResponse(str(exc), status=400)
    return HttpResponseRedirect(reverse("ground-board"))


@require_GET
@_in_thread
def board(request, user):
    """Staff: today's tasks at their car parks and the keys out."""
    carparks = selectors.carpark_ids_for(user_id=user.pk, roles=STAFF_ROLES)
    if not carparks:
        raise Http404("no car park")
    return render(
        request,
        "ground/board.html",
        {"tasks": selectors.board_tasks(carpark_ids=carparks), "keys": selectors.keys_out(carpark_ids=carparks)},
    )


@require_GET
@_in_thread
def keys_out_json(request, user):
    """Keys held by drivers per car park code, for the staff dashboard's tiles."""
    carparks = selectors.carpark_ids_for(user_id=user.pk, roles=STAFF_ROLES)
    counts = selectors.keys_out_counts(carpark_ids=carparks)
    codes = dict(CarPark.objects.filter(pk__in=carparks).values_list("pk", "code"))
    return JsonResponse({"carparks": {codes[pk]: counts.get(pk, 0) for pk in carparks}})


def _sheet_carpark(user, code: str) -> CarPark:
    carpark = CarPark.objects.filter(code=code).first()
    if carpark is None or carpark.pk not in selectors.carpark_ids_for(user_id=user.pk, roles=ALL_ROLES):
        raise Http404("no such car park")
    return carpark


def _sheet_day(carpark: CarPark):
    return timezone.localtime(timezone.now(), carpark.tz).date()


@require_GET
@_in_thread
def sheet_page(request, user, code: str):
    carpark = _sheet_carpark(user, code)
    return render(request, "ground/sheet.html", selectors.shift_sheet(carpark=carpark, day=_sheet_day(carpark)))


@require_GET
@_in_thread
def sheet_pdf(request, user, code: str):
    carpark = _sheet_carpark(user, code)
    sheet = selectors.shift_sheet(carpark=carpark, day=_sheet_day(carpark))
    pdf = sheets.shift_sheet_pdf(sheet, base_url=request.build_absolute_uri("/"))
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="shift-{carpark.code}-{sheet["day"]}.pdf"'
    return response
