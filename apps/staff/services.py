"""Staff writes: creating staff members and their roles at car parks."""

import ipaddress

from axes.utils import reset as axes_reset
from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.db import transaction

from apps.carparks.models import CarPark
from apps.core.services import audit_log_record
from apps.staff.models import StaffAssignment


class UnknownCarPark(Exception):
    """One of the car park codes does not exist."""


class DemoUserRefused(Exception):
    """The demo staff user belongs to the demo world (seed_demo) alone; `check --deploy` refuses it."""


def staff_member_set(*, username: str, password: str | None, carpark_codes: list[str], role: str, actor=None):
    """Create (or update) a staff member and give them `role` at each car park; returns the user.

    Existing assignments at other car parks are kept; a password of None keeps the current one. A password that
    fails the AUTH_PASSWORD_VALIDATORS raises django's ValidationError before anything is saved.
    """
    if username == settings.DEMO_STAFF_USERNAME:
        raise DemoUserRefused(username)
    if role not in StaffAssignment.Role.values:
        raise ValueError(f"unknown role {role!r}")
    carparks = {c.code: c for c in CarPark.objects.filter(code__in=carpark_codes)}
    missing = sorted(set(carpark_codes) - set(carparks))
    if missing:
        raise UnknownCarPark(", ".join(missing))
    with transaction.atomic():
        user, created = get_user_model().objects.get_or_create(username=username)
        if password is not None:
            password_validation.validate_password(password, user)  # rolls the new user back
            user.set_password(password)
            user.save()
        for carpark in carparks.values():
            StaffAssignment.objects.update_or_create(user=user, carpark=carpark, defaults={"role": role})
            audit_log_record(
                action="staff.role",
                actor=actor,
                actor_label="" if actor else "command line",
                obj=user,
                carpark=carpark,
                data={"username": username, "role": role, "created": created},
            )
    return user


def login_lockout_audit(*, username: str | None, ip_address: str | None) -> None:
    """django-axes refused a login (it locked out, or it still locks out, the account or the address): audited."""
    audit_log_record(
        action="staff.login_locked_out",
        actor_label="django-axes",
        data={"username": (username or "")[:150], "ip_address": ip_address or ""},
    )


def login_lockout_clear(*, actor, username: str = "", ip_address: str = "") -> int:
    """Unlock an account or a client address (django-axes' failures for it forgotten); returns the records removed."""
    if bool(username) == bool(ip_address):
        raise ValueError("unlock one account or one address")
    if ip_address:
        ip_address = str(ipaddress.ip_address(ip_address))  # ValueError for anything else
    with transaction.atomic():
        removed = axes_reset(username=username) if username else axes_reset(ip=ip_address)
        audit_log_record(
            action="staff.login_unlocked",
            actor=actor,
            data={"username": username} if username else {"ip_address": ip_address},
        )
    return removed
