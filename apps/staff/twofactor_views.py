"""/accounts/two-factor/: set up the authenticator app (first time) or enter its code (every sign-in)."""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.shortcuts import render

from apps.core.concurrency import run_sync
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
