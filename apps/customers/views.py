"""Staff pages for subject requests: find a person, download their export, erase them (with a reason).

Only superusers and staff granted `customers.handle_subject_requests` (admin, Users) reach them: a subject access
request covers every car park, so it is no car park role's job.
"""

import json

from django.contrib.auth.decorators import login_required
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse, HttpResponseForbidden
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from apps.core.concurrency import run_sync
from apps.customers import selectors
from apps.customers.erasure import ErasureRefused, customer_erase
from apps.customers.export import customer_export
from apps.customers.subjects import Nobody

PERMISSION = "customers.handle_subject_requests"
FIELDS = ("email", "plate", "name")


async def _handler(request):
    user = await request.auser()
    return user if await run_sync(user.has_perm, PERMISSION) else None


def _who(data) -> dict[str, str]:
    """The one search field given (email, plate or name), else {}."""
    given = {f: data.get(f, "").strip()[:200] for f in FIELDS if data.get(f, "").strip()}
    return given if len(given) == 1 else {}


@login_required
@require_GET
async def find(request):
    user = await _handler(request)
    if user is None:
        return HttpResponseForbidden("Subject requests are handled by staff with that permission.")
    who, summary = _who(request.GET), None
    if who:
        summary = await run_sync(selectors.subject_summary, **who)
    context = {"who": who, "summary": summary, "user": user, "searched": bool(who)}
    return render(request, "customers/find.html", context)


@login_required
@require_GET
async def export(request):
    user = await _handler(request)
    if user is None:
        return HttpResponseForbidden("Subject requests are handled by staff with that permission.")
    who = _who(request.GET)
    try:
        document = await run_sync(customer_export, **who, actor=user) if who else None
    except Nobody:
        document = None
    if document is None:
        return HttpResponse("Nobody matches.", status=404, content_type="text/plain")
    response = HttpResponse(
        json.dumps(document, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False), content_type="application/json"
    )
    response["Content-Disposition"] = 'attachment; filename="subject-access.json"'
    return response


@login_required
@require_POST
async def erase(request):
    user = await _handler(request)
    if user is None:
        return HttpResponseForbidden("Subject requests are handled by staff with that permission.")
    who = {k: v for k, v in _who(request.POST).items() if k != "name"}
    reason = request.POST.get("reason", "").strip()[:500]
    outcome, status = {}, 200
    if not who or not reason:
        outcome, status = {"error": "Give the email address or plate, and the reason."}, 400
    else:
        try:
            erasure = await run_sync(customer_erase, **who, reason=reason, actor=user)
            outcome = {"counts": sorted(erasure.counts.items()), "erasure_id": erasure.pk}
        except Nobody:
            outcome, status = {"error": "Nobody matches: nothing was erased."}, 404
        except ErasureRefused as exc:
            outcome, status = {"error": f"Erasure refused: {exc}"}, 409
    return render(request, "customers/erased.html", {"outcome": outcome, "user": user}, status=status)
