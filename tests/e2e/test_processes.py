"""Process-level behaviour of `manage.py serve`: clean SIGTERM, the embedded default, production checks."""

import signal
import smtplib
import subprocess
import sys

import httpx
import psutil
import psycopg
import pytest

from tests.clients import send_mail
from tests.support import ROOT, free_port, start_server, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_sigterm_lets_an_smtp_transaction_in_flight_finish_then_exits_cleanly(server_env, demo_world):
    server = start_server(server_env, name="serve-sigterm", worker=False)
    smtp = smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10)
    smtp.ehlo()
    smtp.mail("agent@example.com")
    assert smtp.rcpt("skypark@bookings.parkgate.test")[0] == 250
    assert smtp.docmd("DATA")[0] == 354
    server.serve.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: _refuses_connections(server.smtp_port), message="SMTP listener closed")
    smtp.send(b"Subject: in flight\r\n\r\nBooking Status: Cancelled\r\nBooking Reference: X-1\r\n.\r\n")
    code, text = smtp.getreply()
    assert code == 250, text
    smtp.quit()
    assert server.serve.proc.wait(timeout=20) == 0
    assert "stopped" in server.serve.log()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.http}/healthz", timeout=1)


def _refuses_connections(port: int) -> bool:
    try:
        smtplib.SMTP("127.0.0.1", port, timeout=1).close()
    except OSError:
        return True
    return False


def test_embedded_default_runs_on_its_own_postgresql_with_nothing_installed(server_env, tmp_path):
    """No DATABASE_URL, no REDIS_URL: a PostgreSQL cluster of Parkgate's own, in-memory channel layer, jobs inside
    `serve`. Commands join the running cluster (never a second one on its directory); when `serve` exits, the
    cluster it started stops with it."""
    data_dir = tmp_path / "pg"
    env = {k: v for k, v in server_env.items() if k not in ("REDIS_URL", "DATABASE_URL")} | {
        "EMBEDDED_POSTGRES_DIR": str(data_dir),
        "DEBUG": "1",
    }
    assert manage(env, "migrate", "--no-input").returncode == 0
    assert not _postmaster_running(data_dir)  # the command that started it stopped it on its way out
    seeded = manage(env, "seed_demo")
    assert seeded.returncode == 0 and "Demo world ready" in seeded.stdout
    server = start_server(env, name="serve-embedded")
    try:
        postmaster = _postmaster_running(data_dir)
        assert postmaster
        ready = httpx.get(f"{server.http}/readyz").json()
        assert ready["checks"] == {"database": True, "channel_layer": True}
        assert "in-process worker" in server.serve.log()
        enrolled = manage(env, "enrol_device", "--carpark", "LHR-T5", "--lane", "N-IN")
        assert enrolled.returncode == 0, enrolled.stderr
        assert _postmaster_running(data_dir) == postmaster  # joined the running cluster, and left it running
        body = (
            "Booking Status: New\nBooking Reference: EMB-1\nCar Park: LHR-T5\nCustomer Name: Ann Lee\n"
            "Drop Off Date: 01/12/2026\nDrop Off Time: 08:00\nReturn Date: 05/12/2026\nReturn Time: 18:00\n"
            "Registration: EM12 BED\nTotal Price: 40.00\n"
        )
        assert send_mail(server, to="skypark@bookings.parkgate.test", body=body) == {}

        def booked():
            with psycopg.connect(f"postgresql://postgres@/parkgate?host={data_dir}") as conn:
                return conn.execute("SELECT reference FROM bookings_booking WHERE agent_ref = 'EMB-1'").fetchone()

        assert wait_for(booked, message="booking made by the in-process job")
    finally:
        assert server.stop() == [0]
    assert not _alive(postmaster) and not _postmaster_running(data_dir)


def _postmaster_running(data_dir) -> int | None:
    """The pid of the cluster's postmaster while one runs on `data_dir`."""
    pid_file = data_dir / "postmaster.pid"
    if not pid_file.exists():
        return None
    pid = int(pid_file.read_text().split()[0])
    return pid if _alive(pid) else None


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE  # a stopped daemon may wait to be reaped
    except psutil.NoSuchProcess:
        return False


def test_check_deploy_passes_in_production_settings_but_not_while_the_demo_user_exists(server_env, demo_world):
    from django.contrib.auth.models import User

    from apps.agents.models import Agent

    env = server_env | {
        "DEBUG": "0",
        "SECRET_KEY": "x7#Kq2!vR9@mZ4$wL8^nB3&cT6*hJ1(pF5)gD0_sY-eU+aI=oQ",
        "PARKGATE_HTTPS": "1",
        "EMAIL_URL": "smtp+tls://parkgate:secret@smtp.example.com:587",
        "STAFF_TWO_FACTOR": "1",  # production's default (the tests' environment turns it off)
    }
    refused = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert refused.returncode == 1 and "parkgate.E001" in refused.stderr
    assert "Agent 'skypark' has no sender restriction" in refused.stderr  # the demo agents are open
    User.objects.filter(username="demo").delete()
    Agent.objects.update(allowed_networks="192.0.2.0/24")
    passed = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert passed.returncode == 0, passed.stderr


def test_readyz_is_503_while_the_database_or_redis_is_unreachable(server_env):
    dead_port = free_port()  # nothing listens there
    env = server_env | {
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{dead_port}/nothing",
        "REDIS_URL": f"redis://127.0.0.1:{dead_port}/0",
    }
    server = start_server(env, name="serve-unready", worker=False)
    try:
        assert httpx.get(f"{server.http}/healthz").status_code == 200  # alive, though not ready
        response = httpx.get(f"{server.http}/readyz", timeout=10)
        assert response.status_code == 503
        assert response.json()["checks"] == {"database": False, "redis": False}
    finally:
        server.stop()
