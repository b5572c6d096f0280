"""Bulkheaded deployment (docs/architecture.md, Deployment): a `serve` process limited to lane controllers and one
limited to dashboards, sharing PostgreSQL and Redis. Each refuses the other's WebSocket route with 403, and an entry
decided on the lanes' process still reaches a dashboard on the other one."""

import subprocess
import sys

import pytest
import websockets

from tests.clients import LaneController, enrol
from tests.dashboard.conftest import dashboard_socket, login, make_booking, next_frame
from tests.support import ROOT, start_server

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def split_servers(server_env):
    lanes = start_server(server_env | {"SERVE_WEBSOCKETS": "device"}, name="serve-lanes-only", worker=False)
    try:
        dashboards = start_server(
            server_env | {"SERVE_WEBSOCKETS": "dashboard"}, name="serve-dashboards-only", worker=False
        )
    except BaseException:
        lanes.stop()
        raise
    yield lanes, dashboards
    dashboards.stop()
    lanes.stop()


async def test_lanes_and_dashboards_on_separate_processes(split_servers, server_env, staff):
    from asgiref.sync import sync_to_async

    lanes, dashboards = split_servers
    await sync_to_async(staff)("mo", "operator", "LHR-T5")
    await sync_to_async(make_booking)("LHR-T5", "BH77 AAA")
    device = await sync_to_async(enrol)(lanes, server_env, "LHR-T5", ["N-IN"])
    client = await sync_to_async(login)(dashboards, "mo")

    with pytest.raises(websockets.InvalidStatus) as refused:
        await dashboard_socket(lanes, client)
    assert refused.value.response.status_code == 403
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with LaneController(dashboards, device["token"], "misrouted"):
            pass
    assert refused.value.response.status_code == 403

    ws = await dashboard_socket(dashboards, client)
    snapshot = await next_frame(ws)
    before = next(c["occupancy"] for c in snapshot["carparks"] if c["code"] == "LHR-T5")
    async with LaneController(lanes, device["token"], "lanes-only") as lane:
        await lane.hello()
        assert (await lane.read("N-IN", "BH77AAA"))["action"] == "open"
    delta = await next_frame(ws, timeout=10, match=lambda f: f["type"] == "delta" and f.get("occupancy") is not None)
    await ws.close()
    assert (delta["carpark"], delta["occupancy"]) == ("LHR-T5", before + 1)


def test_serve_refuses_an_unknown_websocket_route(server_env):
    args = [sys.executable, str(ROOT / "manage.py"), "serve", "--websockets", "device,lanes", "--no-smtp"]
    out = subprocess.run(args, env=server_env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "--websockets takes device and/or dashboard" in out.stderr
