"""Staff permissions over HTTP and over the open WebSocket, against a real `serve` on PostgreSQL and Redis:
an operator of MAN-T2 gets nothing of LHR-T5; logging out or losing the role closes the socket."""

import asyncio

import httpx
import pytest
import websockets

from apps.staff.models import StaffAssignment
from tests.clients import LaneController, enrol
from tests.dashboard.conftest import dashboard_socket, login, make_booking, next_frame, post

pytestmark = pytest.mark.django_db(transaction=True)


def test_anonymous_gets_the_login_form_and_no_data(parkgate, demo_world):
    page = httpx.get(f"{parkgate.http}/dashboard/")
    assert page.status_code == 302 and "/accounts/login/" in page.headers["location"]
    assert httpx.get(f"{parkgate.http}/dashboard/snapshot").status_code == 401
    assert httpx.post(f"{parkgate.http}/dashboard/lanes/1/open", data={"reason": "x"}).status_code in (401, 403)


def test_operator_of_man_t2_gets_nothing_of_lhr_t5_over_http(parkgate, server_env, staff):
    staff("mo", "operator", "MAN-T2")
    lhr_booking = make_booking("LHR-T5", "LH55 AAA")
    man_booking = make_booking("MAN-T2", "MN55 BBB")
    client = login(parkgate, "mo")

    page = client.get("/dashboard/")
    assert page.status_code == 200
    assert 'data-carpark="MAN-T2"' in page.text and "LHR-T5" not in page.text

    snapshot = client.get("/dashboard/snapshot").json()
    assert [c["code"] for c in snapshot["carparks"]] == ["MAN-T2"]

    found = client.get("/dashboard/search", params={"q": "mn55bbb"}).text
    assert man_booking.reference in found
    for query in ("LH55AAA", lhr_booking.reference):
        hidden = client.get("/dashboard/search", params={"q": query}).text.split('id="results"')[1]
        assert "Bookings (0)" in hidden and "Visits (0)" in hidden and "Reads (0)" in hidden
        assert 'class="booking"' not in hidden

    from apps.carparks.models import Lane

    lhr_lane = Lane.objects.get(carpark__code="LHR-T5", code="N-IN")
    man_lane = Lane.objects.get(carpark__code="MAN-T2", code="IN1")
    refused = post(client, f"/dashboard/lanes/{lhr_lane.id}/open", {"reason": "let me in"})
    assert refused.status_code == 404
    assert post(client, f"/dashboard/lanes/{man_lane.id}/open", {"reason": ""}).status_code == 400
    offline = post(client, f"/dashboard/lanes/{man_lane.id}/open", {"reason": "stuck"})
    assert (offline.status_code, offline.json()["error"]) == (409, "lane_offline")


def test_alerts_of_another_car_park_cannot_be_acknowledged(parkgate, server_env, staff):
    from apps.access.models import Alert
    from apps.carparks.models import CarPark

    staff("mo", "operator", "MAN-T2")
    lhr_alert = Alert.objects.create(carpark=CarPark.objects.get(code="LHR-T5"), plate="ZZ99ZZZ", reason="x")
    man_alert = Alert.objects.create(carpark=CarPark.objects.get(code="MAN-T2"), plate="ZZ88ZZZ", reason="x")
    client = login(parkgate, "mo")
    assert post(client, f"/dashboard/alerts/{lhr_alert.id}/acknowledge").status_code == 404
    lhr_alert.refresh_from_db()
    assert lhr_alert.acknowledged_at is None
    answer = post(client, f"/dashboard/alerts/{man_alert.id}/acknowledge")
    assert answer.status_code == 200 and answer.json()["acknowledged_by"] == "mo"
    man_alert.refresh_from_db()
    assert man_alert.acknowledged_by.username == "mo"


def test_accountant_sees_no_operations(parkgate, staff):
    staff("acc", "accountant", "LHR-T5", "MAN-T2")
    client = login(parkgate, "acc")
    assert client.get("/dashboard/snapshot").json() == {"carparks": []}
    assert "data-carpark" not in client.get("/dashboard/").text


async def test_socket_of_man_t2_operator_never_carries_lhr_t5(parkgate, server_env, staff):
    from asgiref.sync import sync_to_async

    await sync_to_async(staff)("mo", "operator", "MAN-T2")
    await sync_to_async(make_booking)("LHR-T5", "LH66 AAA")
    await sync_to_async(make_booking)("MAN-T2", "MN66 BBB")
    lhr = await sync_to_async(enrol)(parkgate, server_env, "LHR-T5", ["N-IN"])
    man = await sync_to_async(enrol)(parkgate, server_env, "MAN-T2", ["IN1"])
    client = await sync_to_async(login)(parkgate, "mo")

    ws = await dashboard_socket(parkgate, client)
    snapshot = await next_frame(ws)
    assert snapshot["type"] == "snapshot" and [c["code"] for c in snapshot["carparks"]] == ["MAN-T2"]
    async with (
        LaneController(parkgate, lhr["token"], "lhr") as lhr_lane,
        LaneController(parkgate, man["token"], "man") as man_lane,
    ):
        await lhr_lane.hello()
        await man_lane.hello()
        assert (await lhr_lane.read("N-IN", "LH66AAA"))["action"] == "open"
        assert (await man_lane.read("IN1", "MN66BBB"))["action"] == "open"
        # MAN-T2's entry reaches the socket (so LHR-T5's, decided first, had every chance to arrive too)
        frames = []
        while not any(f.get("occupancy") == 1 for f in frames):
            frames.append(await next_frame(ws))
        await asyncio.sleep(0.5)
        while True:
            try:
                frames.append(await next_frame(ws, timeout=0.3))
            except TimeoutError:
                break
    await ws.close()
    assert all(f["carpark"] == "MAN-T2" for f in frames), frames
    assert "LHR-T5" not in repr(frames) and "LH66AAA" not in repr(frames)


async def test_socket_needs_a_session_and_a_same_site_origin(parkgate, staff):
    from asgiref.sync import sync_to_async

    await sync_to_async(staff)("mo", "operator", "MAN-T2")
    client = await sync_to_async(login)(parkgate, "mo")
    for who, origin in ((None, None), (client, "http://evil.example")):
        with pytest.raises(websockets.InvalidStatus) as refused:
            await dashboard_socket(parkgate, who, origin=origin)
        assert refused.value.response.status_code == 403
    ws = await dashboard_socket(parkgate, client)
    assert (await next_frame(ws))["type"] == "snapshot"
    await ws.close()


async def test_logging_out_closes_the_socket(parkgate, staff):
    from asgiref.sync import sync_to_async

    await sync_to_async(staff)("mo", "operator", "MAN-T2")
    client = await sync_to_async(login)(parkgate, "mo")
    ws = await dashboard_socket(parkgate, client)
    assert (await next_frame(ws))["type"] == "snapshot"
    assert (await sync_to_async(post)(client, "/accounts/logout/")).status_code in (200, 302)
    assert (await next_frame(ws))["type"] == "revoked"
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await next_frame(ws)
    assert closed.value.rcvd.code == 4403
    with pytest.raises(websockets.InvalidStatus):  # the old cookie no longer opens one
        await dashboard_socket(parkgate, client)


async def test_losing_the_role_closes_the_socket(parkgate, staff):
    from asgiref.sync import sync_to_async

    user = await sync_to_async(staff)("mo", "operator", "MAN-T2", "LHR-T5")
    client = await sync_to_async(login)(parkgate, "mo")
    ws = await dashboard_socket(parkgate, client)
    snapshot = await next_frame(ws)
    assert [c["code"] for c in snapshot["carparks"]] == ["LHR-T5", "MAN-T2"]
    await sync_to_async(StaffAssignment.objects.filter(user=user, carpark__code="LHR-T5").delete)()
    assert (await next_frame(ws, match=lambda f: f["type"] == "revoked"))["type"] == "revoked"
    with pytest.raises(websockets.ConnectionClosed):
        await next_frame(ws)
    ws = await dashboard_socket(parkgate, client)  # a new socket sees what is left
    assert [c["code"] for c in (await next_frame(ws))["carparks"]] == ["MAN-T2"]
    await ws.close()


async def test_socket_accepts_staff_origins_only_not_a_brand_domain(parkgate, staff):
    """Every brand domain is an allowed host (customers' sites), but a page on one must not open staff sockets with
    the staff member's cookies: the dashboard socket takes STAFF_ORIGINS only (the default: the loopback hosts)."""
    from asgiref.sync import sync_to_async

    await sync_to_async(staff)("mo", "operator", "MAN-T2")
    client = await sync_to_async(login)(parkgate, "mo")
    port = parkgate.http_port
    for brand in (f"http://skyline.parkgate.test:{port}", f"http://demo.parkgate.test:{port}"):
        with pytest.raises(websockets.InvalidStatus) as refused:
            await dashboard_socket(parkgate, client, origin=brand)
        assert refused.value.response.status_code == 403, brand
    for staff_origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}"):
        ws = await dashboard_socket(parkgate, client, origin=staff_origin)
        assert (await next_frame(ws))["type"] == "snapshot"
        await ws.close()
