"""/accounts/two-factor/: set up the authenticator app (first time) or enter its code (every sign-in)."""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.shortcuts import render

from apps.core.concurrency import run_sync
from apps.staff import sessions as staff_sessions
from apps.staff import twofactor


@login_required
async def two_factor(request):
    user = await request.auser()
    next_url = twofactor.safe_next(request, request.POST.get("next") or request.GET.get("next", ""))
    if user.is_verified():
        return HttpResponseRedirect(next_url)
    error = ""
    if request.method == "POST":
        token = request.POST.get("token", "")[:12]
        if await run_sync(twofactor.second_factor_verify, request=request, user=user, token=token):
            return HttpResponseRedirect(next_url)
        error = "That code is not right (or came too late). Try the current one."
    context = {"user": user, "next": next_url, "error": error, **await run_sync(twofactor.totp_setup, user=user)}
    return render(request, "registration/two_factor.html", context, status=400 if error else 200)


@login_required
async def sessions(request):
    """The staff member's own sessions; revoke any (signing that browser out)."""
    user = await request.auser()
    if request.method == "POST":
        await run_sync(staff_sessions.staff_session_revoke, user=user, session_id=request.POST.get("session", "")[:16])
        return HttpResponseRedirect(request.path)
    rows = await run_sync(staff_sessions.staff_sessions, user_id=user.pk, current_key=request.session.session_key)
    return render(request, "registration/sessions.html", {"user": user, "sessions": rows})
