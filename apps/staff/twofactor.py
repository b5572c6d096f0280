"""Staff two-factor sign-in (django-otp, TOTP): required for supervisors, accountants and superusers.

After the password (django-axes counting failures as before), a staff member who needs a second factor reaches
nothing but /accounts/two-factor/ until their session is verified with a code from their authenticator app; the
first time, that page sets the app up (a QR code of a new TOTP device, confirmed by its first code). django-otp's
TOTP device throttles wrong codes itself. `check --deploy` fails while any such account has no confirmed device.
"""

import segno
from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.checks import Error, Tags, register
from django.db import DatabaseError, transaction
from django.http import HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.core.services import audit_log_record
from apps.staff.models import StaffAssignment

ROLES = (StaffAssignment.Role.SUPERVISOR, StaffAssignment.Role.ACCOUNTANT)
SESSION_EXEMPT = "pg_2fa_exempt"
OPEN_PATHS = ("/accounts/two-factor/", "/accounts/logout/", "/static/", "/healthz", "/readyz", "/metrics")


def second_factor_required(*, user) -> bool:
    return bool(user.is_superuser or StaffAssignment.objects.filter(user=user, role__in=ROLES).exists())


def session_lacks_second_factor(*, user, session) -> bool:
    """For connections that bypass the HTTP middleware (the dashboard's WebSocket): is this session signed in with
    the password alone by someone who needs a second factor?"""
    if not settings.STAFF_TWO_FACTOR or session is None:
        return False
    device_id = session.get(DEVICE_ID_SESSION_KEY)
    if (
        device_id
        and TOTPDevice.objects.filter(user=user, confirmed=True, pk=str(device_id).rsplit("/", 1)[-1]).exists()
    ):
        return False
    return second_factor_required(user=user)


def users_without_second_factor() -> list[str]:
    """Active accounts that need a second factor and have no confirmed device (for `check --deploy`)."""
    users = get_user_model().objects.filter(is_active=True)
    needing = users.filter(is_superuser=True) | users.filter(assignments__role__in=ROLES)
    with_device = TOTPDevice.objects.filter(confirmed=True).values("user_id")
    return sorted(set(needing.exclude(pk__in=with_device).values_list("username", flat=True)))


class SecondFactorMiddleware:
    """After OTPMiddleware: an authenticated staff member who needs a second factor and has not given it this
    session is sent to /accounts/two-factor/ (pages) or refused (JSON: 403)."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    async def __call__(self, request):
        if settings.STAFF_TWO_FACTOR and not request.path.startswith(OPEN_PATHS) and await self._blocked(request):
            if request.path.startswith(("/api/", "/dashboard/snapshot")) or request.method != "GET":
                return JsonResponse({"error": "second_factor_required"}, status=403)
            return HttpResponseRedirect(f"{reverse('two-factor')}?next={request.get_full_path()}")
        return await self.get_response(request)

    async def _blocked(self, request) -> bool:
        user = await request.auser()
        if not user.is_authenticated or user.is_verified():
            return False
        if await request.session.aget(SESSION_EXEMPT):
            return False
        required = await sync_to_async(second_factor_required)(user=user)
        if not required:
            await request.session.aset(SESSION_EXEMPT, True)
        return required


def totp_device(*, user) -> tuple[TOTPDevice, bool]:
    """The user's confirmed device, or their unconfirmed one being set up (made now if none): (device, confirmed)."""
    confirmed = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if confirmed is not None:
        return confirmed, True
    device, _ = TOTPDevice.objects.get_or_create(user=user, confirmed=False, defaults={"name": "authenticator app"})
    return device, False


def totp_setup(*, user) -> dict:
    """What the two-factor page shows: for a device being set up, its QR code (SVG) and key to type instead."""
    device, confirmed = totp_device(user=user)
    if confirmed:
        return {"setup": False, "qr": "", "key": ""}
    url = device.config_url
    key = url.split("secret=")[1].split("&")[0]
    return {"setup": True, "qr": segno.make(url, error="m").svg_inline(scale=4), "key": key}


def second_factor_verify(*, request, user, token: str) -> bool:
    """Check a code against the user's device; confirm a new device with its first good code; mark the session
    verified. Audited either way (without the code)."""
    with transaction.atomic():
        device, confirmed = totp_device(user=user)
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        ok = device.verify_is_allowed()[0] and device.verify_token(token.strip().replace(" ", ""))
        if ok and not confirmed:
            device.confirmed = True
            device.save(update_fields=["confirmed"])
        audit_log_record(
            action="staff.second_factor" if ok else "staff.second_factor_failed",
            actor=user,
            data={"enrolled": ok and not confirmed},
        )
    if ok:
        otp_login(request, device)
    return ok


def safe_next(request, value: str) -> str:
    ok = url_has_allowed_host_and_scheme(value, allowed_hosts={request.get_host()}, require_https=request.is_secure())
    return value if value and ok else reverse("dashboard")


@register(Tags.security, deploy=True)
def supervisors_have_a_second_factor(app_configs, **kwargs):
    if not settings.STAFF_TWO_FACTOR:
        return [Error("STAFF_TWO_FACTOR is off: staff sign in with a password alone.", id="parkgate.E010")]
    try:
        missing = users_without_second_factor()
    except DatabaseError:
        return []
    if missing:
        return [
            Error(
                f"Staff who must sign in with a second factor have none set up: {', '.join(missing)}.",
                hint="Each signs in once and sets up an authenticator app at /accounts/two-factor/.",
                id="parkgate.E011",
            )
        ]
    return []
