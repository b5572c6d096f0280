"""Fixtures for the staff dashboard's tests: staff members, logged-in HTTP clients, dashboard sockets, a lane
controller that lives in its own thread (so a synchronous Playwright test can drive a browser meanwhile), Chromium."""

import asyncio
import json
import os
import re
import threading
from datetime import timedelta
from itertools import count

import httpx
import pytest
import websockets
from django.utils import timezone

from tests.clients import LaneController
from tests.support import Server

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "correct-horse-battery"
_refs = count(1)


@pytest.fixture
def staff(demo_world):
    """make(username, role, *carpark codes) -> user, through the staff service (as create_staff does)."""
    from apps.staff.services import staff_member_set

    def make(username: str, role: str, *carparks: str):
        return staff_member_set(username=username, password=PASSWORD, carpark_codes=list(carparks), role=role)

    return make


def make_booking(carpark: str, plate: str, *, arrival=None, departure=None, customer: str = "Test Customer"):
    """A confirmed booking straight into the tables (booking services are tested elsewhere)."""
    from apps.bookings.models import Booking, Customer, Vehicle
    from apps.carparks.models import CarPark
    from apps.core.plates import lookalike_key, normalise

    now = timezone.now()
    booking = Booking.objects.create(
        reference=f"PG-D{next(_refs):05d}",
        carpark=CarPark.objects.get(code=carpark),
        customer=Customer.objects.create(name=customer),
        arrival=arrival or now - timedelta(minutes=30),
        departure=departure or now + timedelta(days=2),
        source="staff",
        price=10,
        currency="GBP",
    )
    Vehicle.objects.create(
        booking=booking, registration_raw=plate, registration=normalise(plate), lookalike_key=lookalike_key(plate)
    )
    return booking


def login(server: Server, username: str, password: str = PASSWORD) -> httpx.Client:
    """A staff member's HTTP session, logged in through the login form like a browser."""
    client = httpx.Client(base_url=server.http, follow_redirects=False, timeout=10)
    form = client.get("/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    answer = client.post(
        "/accounts/login/", data={"username": username, "password": password, "csrfmiddlewaretoken": token}
    )
    assert answer.status_code == 302, answer.text
    return client


def post(client: httpx.Client, url: str, data: dict | None = None) -> httpx.Response:
    """A POST from the dashboard's page (same origin, CSRF header), as its script does it."""
    headers = {"X-CSRFToken": client.cookies.get("csrftoken", ""), "Referer": f"{client.base_url}/dashboard/"}
    return client.post(url, data=data or {}, headers=headers)


async def dashboard_socket(server: Server, client: httpx.Client | None, origin: str | None = None):
    """Open /ws/dashboard/ with the client's session cookie and a same-site Origin (unless told otherwise)."""
    headers = {"Origin": origin or server.http}
    if client is not None:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    return await websockets.connect(f"{server.ws}/ws/dashboard/", additional_headers=headers)


async def next_frame(ws, timeout: float = 5, match=None) -> dict:
    """The next frame (optionally the next one for which `match(frame)` is true)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), max(0.01, deadline - loop.time())))
        if match is None or match(frame):
            return frame


class ThreadedController:
    """A real lane controller (tests.clients.LaneController over `websockets`) running on its own event loop in a
    thread: it says hello, sends heartbeats, and answers each barrier `command` with a `command_result`."""

    def __init__(self, server: Server, token: str, name: str, barriers: dict[str, str], answer: str = "done"):
        self.server, self.token, self.name, self.barriers, self.answer = server, token, name, barriers, answer
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.decisions: dict[str, dict] = {}
        self.commands: list[dict] = []
        self.frames: asyncio.Queue | None = None

    def __enter__(self) -> "ThreadedController":
        self.thread.start()
        self.call(self._start())
        return self

    def __exit__(self, *exc) -> None:
        self.call(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def call(self, coro, timeout: float = 15):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self) -> None:
        self.lane = LaneController(self.server, self.token, self.name)
        await self.lane.__aenter__()
        await self.lane.hello()
        await self.lane.send({"type": "heartbeat", "barriers": self.barriers})
        self.waiters: dict[str, asyncio.Future] = {}
        self.reader = asyncio.create_task(self._read_forever())

    async def _stop(self) -> None:
        self.reader.cancel()
        await self.lane.__aexit__()

    async def _read_forever(self) -> None:
        while True:
            frame = json.loads(await self.lane.ws.recv())
            if frame.get("type") == "command":
                self.commands.append(frame)
                await self.lane.send(
                    {"type": "command_result", "command_id": frame["command_id"], "status": self.answer, "detail": ""}
                )
            elif frame.get("read_id") in self.waiters:
                self.waiters.pop(frame["read_id"]).set_result(frame)

    async def _read(self, lane: str, plate: str) -> dict:
        read_id = f"{self.name}-{next(_refs):06d}"
        self.waiters[read_id] = asyncio.get_running_loop().create_future()
        await self.lane.send(
            {
                "type": "plate_read",
                "read_id": read_id,
                "lane": lane,
                "plate": plate,
                "score": 0.95,
                "captured_at": timezone.now().isoformat().replace("+00:00", "Z"),
            }
        )
        return await asyncio.wait_for(self.waiters[read_id], 10)

    def read(self, lane: str, plate: str) -> dict:
        """Send a plate read and return its decision."""
        return self.call(self._read(lane, plate))


@pytest.fixture(scope="module")
def chromium(server_env):
    """Headless Chromium. Playwright's sync API keeps an event loop running in this thread, which makes Django
    refuse ORM calls here; the tests' own ORM calls are plain sync code, so they are allowed for its lifetime."""
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE")


def browser_login(page, server: Server, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{server.http}/dashboard/")
    assert "/accounts/login/" in page.url
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/")
