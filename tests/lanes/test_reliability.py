"""PostgreSQL or Redis unreachable for a moment, for real: a server of our own talks to them through a TCP proxy
that the test cuts and restores (device-protocol.md 2: `retry`, 1013; Redis never closes lane connections)."""

import asyncio
import time
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from apps.access import services
from apps.access.models import PlateRead, Visit
from tests.clients import LaneController
from tests.lanes.conftest import in_thread, make_booking, make_device
from tests.lanes.proxy import TcpProxy
from tests.support import start_server, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def via_proxy(url: str, default_port: int) -> tuple[str, TcpProxy]:
    parts = urlsplit(url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or default_port)
    netloc = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{netloc}127.0.0.1:{proxy.port}")), proxy


@pytest.fixture(scope="module")
def db_cut_proxied(server_env):
    """One server for the module's database tests (starting one takes seconds); each test restores the link."""
    url, proxy = via_proxy(server_env["DATABASE_URL"], 5432)
    server = start_server(server_env | {"DATABASE_URL": url, "DB_POOL_TIMEOUT": "1"}, name="lanes-db-cut", worker=False)
    yield server, proxy
    server.stop()
    proxy.close()


@pytest.fixture
def db_cut_server(db_cut_proxied):
    yield db_cut_proxied
    db_cut_proxied[1].restore()


@pytest.fixture
def redis_cut_server(server_env):
    url, proxy = via_proxy(server_env["REDIS_URL"], 6379)
    server = start_server(server_env | {"REDIS_URL": url}, name="lanes-redis-cut", worker=False)
    yield server, proxy
    proxy.restore()
    server.stop()
    proxy.close()


def test_database_unreachable_reads_get_retry_the_connection_survives_and_the_resend_succeeds(db_cut_server, world):
    server, proxy = db_cut_server
    booking = make_booking(world["one"], "RE12TRY")
    device = make_device("TST1", ["IN"])

    async def drive():
        async with LaneController(server, device["token"]) as lane:
            await lane.hello()
            await in_thread(proxy.cut)
            during = await lane.read("IN", "RE12TRY", read_id="r-1")
            await in_thread(proxy.restore)
            for _ in range(20):  # the controller resends later, as the protocol says
                after = await lane.read("IN", "RE12TRY", read_id="r-1")
                if after["type"] == "decision":
                    break
                await asyncio.sleep(0.5)
            return during, after

    during, after = asyncio.run(drive())
    assert (during["type"], during["code"], during["read_id"]) == ("error", "retry", "r-1")
    assert (after["type"], after["action"], after["booking"], after["duplicate"]) == (
        "decision", "open", booking.reference, False,
    )  # fmt: skip
    assert PlateRead.objects.count() == 1 and Visit.objects.count() == 1


def test_database_unreachable_at_enrolment_is_503_retry_and_the_code_still_works_after(db_cut_server, world):
    server, proxy = db_cut_server
    device, issued = services.device_create(carpark_code="TST1", lane_codes=["IN"], name="enrol-outage")
    code = issued.code
    proxy.cut()
    during = httpx.post(f"{server.http}/api/device/v1/enrol", json={"code": code}, timeout=15)
    proxy.restore()
    for _ in range(20):  # the controller tries again later; the server's pool reconnects meanwhile
        after = httpx.post(f"{server.http}/api/device/v1/enrol", json={"code": code}, timeout=15)
        if after.status_code != 503:
            break
        time.sleep(0.5)
    assert (during.status_code, during.json()["error"], during.headers["Retry-After"]) == (503, "retry", "30")
    assert (after.status_code, after.json()["device_id"]) == (201, str(device.id))


def test_database_unreachable_at_connect_closes_with_1013(db_cut_server, world):
    server, proxy = db_cut_server
    device = make_device("TST1", ["IN"])
    proxy.cut()

    async def drive():
        async with LaneController(server, device["token"]) as lane:
            with pytest.raises(ConnectionClosed) as closed:
                await lane.recv(timeout=10)
            return closed.value.rcvd.code

    assert asyncio.run(drive()) == 1013


def test_redis_down_keeps_lane_connections_up_and_deciding(redis_cut_server, world):
    server, proxy = redis_cut_server
    booking = make_booking(world["one"], "RD15DWN")
    device = make_device("TST1", ["IN", "OUT"])

    async def drive():
        async with LaneController(server, device["token"]) as lane:
            await lane.hello()
            await in_thread(proxy.cut)
            await asyncio.sleep(1.5)  # the channel layer's receive fails meanwhile
            entry = await lane.read("IN", "RD15DWN")
            await lane.send({"type": "heartbeat", "barriers": {"IN": "open"}})
            exit_ = await lane.read("OUT", "RD15DWN")
            async with LaneController(server, device["token"]) as second:  # a new connection works too
                code = None
                try:
                    await lane.recv(timeout=8)
                except ConnectionClosed as closed:
                    code = closed.rcvd.code
                await second.hello()
                again = await second.read("OUT", "RD15DWN")
            return entry, exit_, code, again

    entry, exit_, code, again = asyncio.run(drive())
    assert (entry["action"], entry["booking"]) == ("open", booking.reference)
    assert (exit_["action"], exit_["reason"]) == ("open", "departure")
    assert code == 4009  # replaced in-process, without Redis
    assert again["reason"] == "repeat"


async def greeted(server, token: str) -> tuple[LaneController, dict]:
    """Connect and say hello as a controller does after an outage: again while the server's database link recovers
    (1013 at connect, or `retry` for the hello)."""
    for _ in range(40):
        lane = await LaneController(server, token).__aenter__()
        try:
            return lane, await lane.hello()
        except (ConnectionClosed, AssertionError):
            await lane.ws.close()
            await asyncio.sleep(0.25)
    raise AssertionError("the server did not greet the controller")


def test_database_unreachable_during_a_settings_change_keeps_the_connection_and_the_welcome_follows(
    db_cut_server, world
):
    """device-protocol.md 2: staff change the settings (a new `welcome` is due) while the server cannot read them. The
    connection stays up; once the database is back, a heartbeat brings the welcome with the new settings."""
    server, proxy = db_cut_server
    device = make_device("TST1", ["IN"])
    carpark = world["one"]
    warning = f"device {device['device_id']}: new settings not sent"

    async def drive():
        lane, old = await greeted(server, device["token"])
        try:
            await in_thread(proxy.cut)
            carpark.min_score = "0.85"
            await in_thread(carpark.save)  # the test's own database link: the server's is cut
            # the nudge reached the server, which could not read the settings (or the connection died)
            await in_thread(wait_for, lambda: warning in server.serve.log() or lane.ws.close_code, timeout=15)
            await in_thread(proxy.restore)
            welcome = None
            for _ in range(30):  # the controller's heartbeats go on
                await lane.send({"type": "heartbeat", "barriers": {"IN": "closed"}})
                try:
                    while (frame := await lane.recv(timeout=0.5))["type"] != "welcome":
                        pass  # an allow-list the settings change may have pushed too
                except TimeoutError:
                    continue
                welcome = frame
                break
            decision = await lane.read("IN", "WE12LCM")
            return old, welcome, decision
        finally:
            await lane.ws.close()

    old, welcome, decision = asyncio.run(drive())
    assert old["settings"]["min_score"] == 0.7
    assert (welcome["type"], welcome["settings"]["min_score"]) == ("welcome", 0.85)
    assert decision["type"] == "decision" and decision["reason"] == "unknown_vehicle"
