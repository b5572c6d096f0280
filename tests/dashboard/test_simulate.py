"""`manage.py simulate` drives a running server over the real protocols (operations.md 3)."""

import re
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.access.models import Device, PlateRead
from apps.bookings.models import Booking
from apps.bookings.services import booking_create
from apps.carparks.models import CarPark
from project.management.commands.simulate import Stats
from tests.support import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


def seed_due_bookings(count: int = 6) -> None:
    """Bookings that may enter now, so the simulator has booked cars to send from its first read on."""
    now = timezone.now()
    for carpark in CarPark.objects.all():
        for i in range(count):
            booking_create(carpark=carpark, arrival=now - timedelta(minutes=30), departure=now + timedelta(days=2),
                           customer_name=f"Due {i}", vehicles=[{"registration": f"DU{i}{carpark.pk} SIM"}],
                           source="staff")  # fmt: skip


def test_simulate_sends_mail_and_plate_reads_through_the_server(parkgate, server_env, demo_world):
    seed_due_bookings()
    command = [
        sys.executable, str(ROOT / "manage.py"), "simulate", "--lanes", "2", "--rate", "4", "--emails", "60",
        "--duration", "8", "--url", parkgate.http, "--smtp", f"127.0.0.1:{parkgate.smtp_port}",
    ]  # fmt: skip
    run = subprocess.run(command, env=server_env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    decided = int(re.search(r"done: reads (\d+)", run.stdout).group(1))  # reads that got their decision
    assert decided >= 1, run.stdout
    assert Booking.objects.filter(agent_ref__startswith="SIM-").exists()  # emails became bookings
    reads = PlateRead.objects.filter(device__name__startswith="simulator")
    assert reads.count() >= decided  # every decided read is recorded (reads in flight at the stop may be too)
    assert reads.filter(action="open", reason="booking").exists()  # a booked car came in
    assert not Device.objects.filter(name__startswith="simulator", revoked_at__isnull=True).exists()


def test_a_progress_line_without_decisions_says_so_rather_than_0_ms():
    stats = Stats(sent=3, decisions={"open": 1, "deny": 2}, latencies=[0.013, 0.015])
    assert "decision p50 15 ms p99 15 ms" in stats.line()
    assert stats.line() == "reads 3 (deny=2 open=1); no decision since the last line; commands answered 0; emails 0"
