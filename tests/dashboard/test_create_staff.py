"""`manage.py create_staff` as operators run it (docs/operations.md 3)."""

import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from apps.staff.models import StaffAssignment
from tests.support import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


def roles(username: str) -> set[tuple[str, str]]:
    return set(StaffAssignment.objects.filter(user__username=username).values_list("carpark__code", "role"))


def test_create_staff_with_roles_at_car_parks(demo_world, monkeypatch):
    monkeypatch.setenv("PARKGATE_PASSWORD", "s3cret-pass")
    both = ["--carpark", "LHR-T5", "--carpark", "MAN-T2"]
    call_command("create_staff", "--username", "alice", *both, "--role", "operator")
    assert roles("alice") == {("LHR-T5", "operator"), ("MAN-T2", "operator")}
    assert get_user_model().objects.get(username="alice").check_password("s3cret-pass")
    monkeypatch.setenv("PARKGATE_PASSWORD", "other-pass")
    call_command("create_staff", "--username", "alice", "--carpark", "MAN-T2", "--role", "supervisor")
    assert roles("alice") == {("LHR-T5", "operator"), ("MAN-T2", "supervisor")}
    assert get_user_model().objects.get(username="alice").check_password("other-pass")


def test_unknown_car_park_exits_1_and_bad_command_line_2(server_env, demo_world):
    def run(*args):
        command = [sys.executable, str(ROOT / "manage.py"), "create_staff", *args]
        env = dict(server_env, PARKGATE_PASSWORD="s3cret-pass")
        return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)

    unknown = run("--username", "bob", "--carpark", "NOPE", "--role", "operator")
    assert unknown.returncode == 1 and "NOPE" in unknown.stderr
    assert not StaffAssignment.objects.filter(user__username="bob").exists()
    assert run("--username", "bob", "--carpark", "LHR-T5", "--role", "janitor").returncode == 2


@pytest.mark.parametrize("password", ["demo", "password123", "12345678901", "carol-parkgate"])
def test_create_staff_refuses_a_weak_password(server_env, demo_world, password):
    """Django's password validators (too short, common, all digits, like the username) run before anything is saved."""
    command = [sys.executable, str(ROOT / "manage.py"), "create_staff", "--username", "carol-parkgate"]
    command += ["--carpark", "LHR-T5", "--role", "operator"]
    result = subprocess.run(
        command, env=dict(server_env, PARKGATE_PASSWORD=password), cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 1, result.stdout
    assert "password" in result.stderr.lower()
    assert not get_user_model().objects.filter(username="carol-parkgate").exists()


def test_create_staff_cannot_make_the_demo_user(server_env, demo_world):
    """Only seed_demo (the demo world) creates the demo user: `check --deploy` refuses it, so nothing else may."""
    get_user_model().objects.filter(username="demo").delete()
    command = [sys.executable, str(ROOT / "manage.py"), "create_staff", "--username", "demo"]
    command += ["--carpark", "LHR-T5", "--role", "supervisor"]
    env = dict(server_env, PARKGATE_PASSWORD="a-long-unusual-passphrase")
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1 and "demo" in result.stderr
    assert not get_user_model().objects.filter(username="demo").exists()
