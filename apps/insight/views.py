"""Staff pages under /reports/: the index, each report (HTML with chart and table; `?format=csv` / `?format=xlsx`),
the forecast, and accepting a recommended overbooking allowance.

Thin async views: read the query, scope it to the car parks the user may see (permissions.py), call a report or a
service through `run_sync`, reply. A car park outside the user's answers 404; a bad range re-renders the page with
the message.
"""

from datetime import date

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, HttpResponseForbidden, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_POST

from apps.carparks.models import CarPark
from apps.core.concurrency import run_sync
from apps.insight import charts, exports, forecast, overbooking, permissions
from apps.insight.reports import REPORTS, BadRange, Params, choice, parse_range, product_sql
from apps.staff import selectors as staff_selectors

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def reports_access(view):
    """Login required; then supervisors and accountants (of some car park) only: operators get 403."""

    @login_required
    async def wrapped(request, *args, **kwargs):
        user = await request.auser()
        carparks = await run_sync(permissions.carparks_for, user_id=user.pk, is_superuser=user.is_superuser)
        if not carparks:
            return HttpResponseForbidden("Reports are for supervisors and accountants.")
        request.staff, request.carparks = user, carparks
        return await view(request, *args, **kwargs)

    wrapped.__name__ = view.__name__
    return wrapped


def _chosen(request, *, one: bool):
    """The car parks the request covers: `?carpark=CODE` (404 unless the user's), else all (or the first)."""
    code = request.GET.get("carpark", "")
    if code:
        chosen = [c for c in request.carparks if c.code == code]
        if not chosen:
            raise Http404("No such car park")
        return tuple(chosen)
    return tuple(request.carparks[:1] if one else request.carparks)


def _page(request, template: str, context: dict):
    return render(request, template, {"user": request.staff, "carparks": request.carparks, **context})


@require_GET
@reports_access
async def index(request):
    return _page(request, "insight/index.html", {"reports": [(slug, r[0]) for slug, r in REPORTS.items()]})


@require_GET
@reports_access
async def report(request, slug: str):
    if slug not in REPORTS:
        raise Http404("No such report")
    title, build, one, default_days, max_days = REPORTS[slug]
    carparks = _chosen(request, one=one)
    context = {"slug": slug, "title": title, "query": request.GET, "one": one, "max_days": max_days,
               "has_products": product_sql() is not None}  # fmt: skip
    try:
        start, end = parse_range(request.GET, default_days=default_days, max_days=max_days)
    except BadRange as exc:
        return render_error(request, context, str(exc))
    params = Params(
        carparks=carparks,
        start=start,
        end=end,
        group=choice(request.GET, "group", ("day", "week", "month")),
        by=choice(request.GET, "by", ("channel", "carpark", "product") if product_sql() else ("channel", "carpark")),
    )
    result = await run_sync(build, params)
    fmt = request.GET.get("format", "")
    name = f"{slug}-{'-'.join(c.code for c in carparks) if one or len(carparks) == 1 else 'all'}-{start}-{end}"
    if fmt == "csv":
        response = HttpResponse(exports.report_csv(result), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
        return response
    if fmt == "xlsx":
        response = HttpResponse(await run_sync(exports.report_xlsx, result), content_type=XLSX)
        response["Content-Disposition"] = f'attachment; filename="{name}.xlsx"'
        return response
    svg = mark_safe(charts.svg(result.chart)) if result.chart else ""  # noqa: S308 (pygal's own SVG, labels escaped)
    context.update(report=result, params=params, chart=svg, page_rows=result.rows[:2000])
    return _page(request, "insight/report.html", context)


def render_error(request, context: dict, message: str):
    response = _page(request, "insight/report.html", {**context, "error": message})
    response.status_code = 400
    return response


@require_GET
@reports_access
async def forecast_page(request):
    carpark = _chosen(request, one=True)[0]
    latest = await run_sync(forecast.forecast_latest, carpark_id=carpark.pk)
    if latest is None:
        latest = await run_sync(forecast.forecast_refresh, carpark_id=carpark.pk)
    view = await run_sync(forecast.forecast_view, forecast_id=latest.pk)
    may_accept = carpark.pk in {
        c.pk
        for c in await run_sync(
            permissions.carparks_for,
            user_id=request.staff.pk,
            is_superuser=request.staff.is_superuser,
            roles=permissions.ACCEPT_ROLES,
        )
    }
    svg = mark_safe(charts.svg(view["chart"]))  # noqa: S308 (pygal's own SVG, labels escaped)
    context = {"carpark": carpark, "forecast": latest, "view": view, "chart": svg, "may_accept": may_accept}
    return _page(request, "insight/forecast.html", context)


@require_POST
@reports_access
async def forecast_refresh(request):
    """On demand: computed here (seconds), so the page that follows shows it."""
    carpark = _chosen_post(request)
    risk = overbooking.parse_risk(request.POST.get("risk", ""))
    await run_sync(forecast.forecast_refresh, carpark_id=carpark.pk, risk=risk)
    messages.success(request, "Forecast refreshed.")
    return redirect(reverse("insight:forecast") + f"?carpark={carpark.code}")


@require_POST
@reports_access
async def allowance_accept(request):
    carpark = _chosen_post(request)
    allowed = await run_sync(
        permissions.carparks_for,
        user_id=request.staff.pk,
        is_superuser=request.staff.is_superuser,
        roles=permissions.ACCEPT_ROLES,
    )
    if carpark.pk not in {c.pk for c in allowed}:
        return HttpResponseForbidden("Only a supervisor of the car park accepts an overbooking allowance.")
    try:
        day = date.fromisoformat(request.POST.get("date", ""))
        spaces = int(request.POST.get("spaces", ""))
        forecast_id = int(request.POST.get("forecast", ""))
    except ValueError:
        messages.error(request, "That allowance could not be read: nothing was accepted.")
    else:
        try:
            allowance = await run_sync(
                overbooking.overbooking_allowance_accept,
                carpark_id=carpark.pk,
                day=day,
                channel=request.POST.get("channel", "")[:40],
                spaces=spaces,
                forecast_id=forecast_id,
                actor=request.staff,
            )
        except overbooking.AllowanceInvalid as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request, f"Accepted: {allowance.channel} may sell {allowance.spaces} over capacity on {allowance.date}."
            )
    return redirect(reverse("insight:forecast") + f"?carpark={carpark.code}")


@require_GET
@login_required
async def forecast_today(request):
    """Today's forecast line for the dashboard's chart: anyone who watches the car park's dashboard (operators too:
    a line of expected counts, no money); [] until a forecast has been made."""
    user = await request.auser()
    code = request.GET.get("carpark", "")
    ids = await run_sync(staff_selectors.carpark_ids_for_user, user_id=user.pk)
    carpark_id = await run_sync(_carpark_id, code=code)
    if carpark_id is None or (carpark_id not in ids and not user.is_superuser):
        return JsonResponse({"error": "not_found"}, status=404)
    return JsonResponse({"carpark": code, "hours": await run_sync(forecast.today_line, carpark_id=carpark_id)})


def _carpark_id(*, code: str) -> int | None:
    return CarPark.objects.filter(code=code).values_list("pk", flat=True).first()


def _chosen_post(request):
    code = request.POST.get("carpark", "")
    chosen = [c for c in request.carparks if c.code == code]
    if not chosen:
        raise Http404("No such car park")
    return chosen[0]
