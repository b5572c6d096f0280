"""The foundation's walking slice, driven from outside the process against a real `serve` + `worker`
on PostgreSQL and Redis: SMTP -> job -> booking; enrolment -> WebSocket -> decision; health."""

import asyncio
import smtplib
import time
from datetime import timedelta

import httpx
import pytest
import websockets
from django.utils import timezone

from apps.bookings.models import Booking
from tests.clients import LaneController, enrol, send_mail
from tests.support import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

LABELS_BOOKING = """Booking Status: New
Booking Reference: {ref}
Car Park: LHR-T5
Customer Name: Jane Smith
Email: jane.smith@example.com
Mobile: 07700 900123
Drop Off Date: {arrival:%d/%m/%Y}
Drop Off Time: {arrival:%H:%M}
Return Date: {departure:%d/%m/%Y}
Return Time: {departure:%H:%M}
Registration: {plate}
Total Price: £54.99
Commission: £8.25
"""


def labels_booking(ref: str, plate: str) -> str:
    local_now = timezone.localtime(timezone.now(), timezone.get_fixed_timezone(0)).replace(tzinfo=None)
    return LABELS_BOOKING.format(
        ref=ref, plate=plate, arrival=local_now - timedelta(hours=1), departure=local_now + timedelta(days=3)
    )


def test_health_and_readiness(parkgate):
    assert httpx.get(f"{parkgate.http}/healthz").status_code == 200
    ready = httpx.get(f"{parkgate.http}/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": True, "redis": True}


def test_the_browsers_favicon_request_gets_the_icon_not_a_404(parkgate):
    icon = httpx.get(f"{parkgate.http}/favicon.ico")
    assert icon.status_code == 200 and icon.content.startswith(b"\x00\x00\x01\x00")  # an ICO file


def test_brand_home_by_host_and_404_for_unknown_host(parkgate, demo_world):
    home = httpx.get(f"{parkgate.http}/", headers={"Host": "skyline.parkgate.test"})
    assert home.status_code == 200 and "Skyline Parking" in home.text
    assert httpx.get(f"{parkgate.http}/", headers={"Host": "nobody.parkgate.test"}).status_code == 404
    assert httpx.get(f"{parkgate.http}/no/such/page").status_code == 404


def test_labels_email_becomes_a_booking(parkgate, demo_world):
    started = time.monotonic()
    refused = send_mail(
        parkgate,
        to="skypark@bookings.parkgate.test",
        body=labels_booking("SPX-104233", "AB12 CDE"),
        subject="Booking Confirmation SPX-104233",
        message_id="<spx-104233@skypark.example>",
    )
    assert refused == {}
    booking = wait_for(
        lambda: Booking.objects.filter(agent__code="skypark", agent_ref="SPX-104233").first(),
        message="the email's booking",
    )
    elapsed = time.monotonic() - started
    assert booking.carpark.code == "LHR-T5"
    assert str(booking.price) == "54.99" and booking.source == "email"
    assert list(booking.vehicles.values_list("registration", "registration_raw")) == [("AB12CDE", "AB12 CDE")]
    print(f"SMTP 250 to booking: {elapsed * 1000:.0f} ms")


def test_unknown_recipient_is_refused_with_550(parkgate, demo_world):
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send_mail(parkgate, to="nobody@bookings.parkgate.test", body="hello")
    code, text = refused.value.recipients["nobody@bookings.parkgate.test"]
    assert code == 550 and text.startswith(b"5.1.1")


async def test_device_without_or_with_bad_token_is_refused(parkgate):
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(f"{parkgate.ws}/ws/device/", additional_headers=headers)
        assert refused.value.response.status_code == 403


def test_enrolment_code_works_once(parkgate, server_env, demo_world):
    from tests.clients import enrol_code

    code = enrol_code(server_env, "LHR-T5", ["N-IN"])
    first = httpx.post(f"{parkgate.http}/api/device/v1/enrol", json={"code": code, "serial": "S", "model": "M"})
    assert first.status_code == 201
    assert first.json()["carpark"] == "LHR-T5" and first.json()["lanes"] == ["N-IN"]
    again = httpx.post(f"{parkgate.http}/api/device/v1/enrol", json={"code": code, "serial": "S", "model": "M"})
    assert (again.status_code, again.json()) == (400, {"error": "invalid_code"})


def test_entry_read_for_an_email_booking_opens_the_barrier(parkgate, server_env, demo_world):
    send_mail(parkgate, to="skypark@bookings.parkgate.test", body=labels_booking("SPX-2", "XY51 ABC"))
    booking = wait_for(lambda: Booking.objects.filter(agent_ref="SPX-2").first(), message="booking")
    device = enrol(parkgate, server_env, "LHR-T5", ["N-IN", "N-OUT"])

    async def drive():
        async with LaneController(parkgate, device["token"]) as lane:
            await lane.send(
                {
                    "type": "plate_read",
                    "read_id": "x",
                    "lane": "N-IN",
                    "plate": "A",
                    "score": 1,
                    "captured_at": "2026-01-01T00:00:00Z",
                }
            )
            assert (await lane.recv())["code"] == "hello_first"
            welcome = await lane.hello()
            assert welcome["carpark"] == "LHR-T5"
            assert welcome["lanes"] == [{"code": "N-IN", "direction": "entry"}, {"code": "N-OUT", "direction": "exit"}]
            assert welcome["settings"] == {"min_score": 0.7, "repeat_window_s": 15, "stale_after_s": 30}
            await lane.send({"type": "nonsense"})
            assert (await lane.recv())["code"] == "bad_message"
            await lane.ws.send("{not json")
            assert (await lane.recv())["code"] == "bad_message"
            t0 = time.perf_counter()
            decision = await lane.read("N-IN", "xy51abc")
            return decision, time.perf_counter() - t0

    decision, rtt = asyncio.run(drive())
    assert decision["action"] == "open" and decision["reason"] == "booking"
    assert decision["match"] == "exact" and decision["booking"] == booking.reference
    assert decision["command_id"] and decision["expires_at"] and decision["duplicate"] is False
    booking.refresh_from_db()
    assert booking.status == "arrived"
    print(f"decision round trip: {rtt * 1000:.1f} ms")
