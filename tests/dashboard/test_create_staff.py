"""`manage.py create_staff` as operators run it (operations.md 3)."""

import subprocess
import sys

import pytest

from apps.staff.models import StaffAssignment
from tests.support import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


def run(server_env, *args, password: str = "s3cret-pass"):  # noqa: S107
    env = dict(server_env, PARKGATE_PASSWORD=password)
    command = [sys.executable, str(ROOT / "manage.py"), "create_staff", *args]
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)


def test_create_staff_with_roles_at_car_parks(server_env, demo_world):
    done = run(server_env, "--username", "alice", "--carpark", "LHR-T5", "--carpark", "MAN-T2", "--role", "operator")
    assert done.returncode == 0, done.stderr
    roles = set(StaffAssignment.objects.filter(user__username="alice").values_list("carpark__code", "role"))
    assert roles == {("LHR-T5", "operator"), ("MAN-T2", "operator")}
    from django.contrib.auth import get_user_model

    assert get_user_model().objects.get(username="alice").check_password("s3cret-pass")
    again = run(server_env, "--username", "alice", "--carpark", "MAN-T2", "--role", "supervisor", password="other-pass")
    assert again.returncode == 0
    roles = set(StaffAssignment.objects.filter(user__username="alice").values_list("carpark__code", "role"))
    assert roles == {("LHR-T5", "operator"), ("MAN-T2", "supervisor")}


def test_unknown_car_park_exits_1_and_bad_command_line_2(server_env, demo_world):
    unknown = run(server_env, "--username", "bob", "--carpark", "NOPE", "--role", "operator")
    assert unknown.returncode == 1 and "NOPE" in unknown.stderr
    assert not StaffAssignment.objects.filter(user__username="bob").exists()
    assert run(server_env, "--username", "bob", "--carpark", "LHR-T5", "--role", "janitor").returncode == 2
    assert run(server_env, "--username", "bob").returncode == 2
