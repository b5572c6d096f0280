"""PostgreSQL or Redis unreachable for a moment, for real: a server of our own talks to them through a TCP proxy
that the test cuts and restores (device-protocol.md 2: `retry`, 1013; Redis never closes lane connections)."""

import asyncio
from urllib.parse import urlsplit, urlunsplit

import pytest
from websockets.exceptions import ConnectionClosed

from apps.access.models import PlateRead, Visit
from tests.clients import LaneController
from tests.lanes.conftest import in_thread, make_booking, make_device
from tests.lanes.proxy import TcpProxy
from tests.support import start_server

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
