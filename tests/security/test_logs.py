"""Log injection (issue #28, 9): what clients send (here a lane controller's firmware string) reaches the server's log
with its control characters escaped, so it can neither forge a log line nor drive the operator's terminal."""

import asyncio

import pytest

from apps.access import services
from tests.clients import LaneController
from tests.support import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

FIRMWARE = "1.4\n2026-12-07 INFO x: FORGED\x1b[31m\r"


def test_a_firmware_string_cannot_forge_log_lines(proxied, demo_world):
    device, issued = services.device_create(carpark_code="LHR-T5", lane_codes=["N-IN"], name="log-test")
    token = services.device_enrol(code=issued.code, serial="S", model="M").token

    async def hello():
        async with LaneController(proxied, token) as lane:
            await lane.send({"type": "hello", "protocol": 1, "firmware": FIRMWARE, "buffered": 0})
            assert (await lane.recv())["type"] == "welcome"

    start = len(proxied.serve.log())  # the log file outlives test runs: read only this test's part
    asyncio.run(hello())
    line = wait_for(
        lambda: next((ln for ln in proxied.serve.log()[start:].splitlines() if f"{device.id}: online" in ln), None),
        message="the device's online line",
    )
    assert line.endswith(r"(firmware 1.4\n2026-12-07 INFO x: FORGED\x1b[31m\r)")
    log = proxied.serve.log()[start:]
    assert "\x1b" not in log and "\r" not in log
    assert not any(ln.startswith("2026-12-07 INFO x: FORGED") for ln in log.splitlines())
