"""`manage.py simulate` drives a running server over the real protocols (operations.md 3)."""

import subprocess
import sys

import pytest

from apps.access.models import Device, PlateRead
from apps.bookings.models import Booking
from tests.support import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


def test_simulate_sends_mail_and_plate_reads_through_the_server(parkgate, server_env, demo_world):
    command = [
        sys.executable, str(ROOT / "manage.py"), "simulate", "--lanes", "2", "--rate", "4", "--emails", "60",
        "--duration", "8", "--url", parkgate.http, "--smtp", f"127.0.0.1:{parkgate.smtp_port}",
    ]  # fmt: skip
    run = subprocess.run(command, env=server_env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "done: reads" in run.stdout
    assert Booking.objects.filter(agent_ref__startswith="SIM-").exists()  # emails became bookings
    reads = PlateRead.objects.filter(device__name__startswith="simulator")
    assert reads.count() >= 10
    assert reads.filter(action="open", reason="booking").exists()  # a booked car came in
    assert not Device.objects.filter(name__startswith="simulator", revoked_at__isnull=True).exists()
