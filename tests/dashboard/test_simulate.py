"""`manage.py simulate` drives a running server over the real protocols (docs/operations.md 3)."""

import re
import subprocess
import sys

import pytest

from apps.access.models import Device, PlateRead
from apps.bookings.models import Booking
from project.management.commands.simulate import Stats
from tests.support import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


def test_simulate_sends_mail_and_plate_reads_through_the_server(parkgate, server_env, demo_world):
    # A new demo world has no bookings: the first batch of emails (--bookings) is what gives the lanes booked cars.
    # --emails 1 sends the next one after a minute, so every booking here came from that batch.
    command = [
        sys.executable, str(ROOT / "manage.py"), "simulate", "--lanes", "2", "--rate", "4", "--bookings", "6",
        "--emails", "1", "--duration", "8", "--url", parkgate.http, "--smtp", f"127.0.0.1:{parkgate.smtp_port}",
    ]  # fmt: skip
    run = subprocess.run(command, env=server_env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "emails 6" in run.stdout.splitlines()[-1], run.stdout
    decided = int(re.search(r"done: reads (\d+)", run.stdout).group(1))  # reads that got their decision
    assert decided >= 1, run.stdout
    assert Booking.objects.filter(agent_ref__startswith="SIM-").count() == 6  # the emails became bookings
    reads = PlateRead.objects.filter(device__name__startswith="simulator")
    assert reads.count() >= decided  # every decided read is recorded (reads in flight at the stop may be too)
    assert reads.filter(action="open", reason="booking", booking__agent_ref__startswith="SIM-").exists()
    assert not Device.objects.filter(name__startswith="simulator", revoked_at__isnull=True).exists()


def test_a_progress_line_without_decisions_says_so_rather_than_0_ms():
    stats = Stats(sent=3, decisions={"open": 1, "deny": 2}, latencies=[0.013, 0.015])
    assert "decision p50 15 ms p99 15 ms" in stats.line()
    assert stats.line() == "reads 3 (deny=2 open=1); no decision since the last line; commands answered 0; emails 0"
