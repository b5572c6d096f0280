"""Real clients for end-to-end tests: a lane controller over `websockets`, an agent over SMTP, an enrolment."""

import json
import smtplib
import subprocess
import sys
from datetime import UTC, datetime
from email.message import EmailMessage
from itertools import count

import httpx
import websockets

from tests.support import ROOT, Server


def enrol_code(env: dict[str, str], carpark: str, lanes: list[str]) -> str:
    """Run `manage.py enrol_device` as staff would; the code is alone on the last line."""
    args = [sys.executable, str(ROOT / "manage.py"), "enrol_device", "--carpark", carpark]
    for lane in lanes:
        args += ["--lane", lane]
    out = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def enrol(server: Server, env: dict[str, str], carpark: str, lanes: list[str]) -> dict:
    """Create a device with the command line and exchange its code over HTTP; returns the enrolment answer."""
    code = enrol_code(env, carpark, lanes)
    response = httpx.post(f"{server.http}/api/device/v1/enrol", json={"code": code, "serial": "T-1", "model": "test"})
    assert response.status_code == 201, response.text
    return response.json()


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class LaneController:
    """A lane controller as the protocol describes it: connect with its token, hello, send reads, await decisions."""

    _ids = count(1)

    def __init__(self, server: Server, token: str, name: str = "cam"):
        self.url, self.token, self.name = f"{server.ws}/ws/device/", token, name
        self.ws = None

    async def __aenter__(self) -> "LaneController":
        self.ws = await websockets.connect(self.url, additional_headers={"Authorization": f"Bearer {self.token}"})
        return self

    async def __aexit__(self, *exc) -> None:
        await self.ws.close()

    async def send(self, frame: dict) -> None:
        await self.ws.send(json.dumps(frame))

    async def recv(self, timeout: float = 5) -> dict:
        import asyncio

        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def hello(self) -> dict:
        await self.send({"type": "hello", "protocol": 1, "firmware": "1.4.2", "buffered": 0})
        welcome = await self.recv()
        assert welcome["type"] == "welcome", welcome
        # device-protocol.md 5: the offline allow-list and block list follow the welcome.
        self.allowlist, self.blocklist = await self.recv(), await self.recv()
        assert (self.allowlist["type"], self.blocklist["type"]) == ("allowlist", "blocklist")
        return welcome

    async def read(self, lane: str, plate: str, score: float = 0.93, **extra) -> dict:
        """Send a plate read and return the frame answering it (skipping allow-lists and other pushes)."""
        read_id = extra.pop("read_id", f"{self.name}-{next(self._ids):06d}")
        frame = {
            "type": "plate_read",
            "read_id": read_id,
            "lane": lane,
            "plate": plate,
            "score": score,
            "captured_at": extra.pop("captured_at", utc_now_iso()),
            **extra,
        }
        await self.send(frame)
        while True:
            answer = await self.recv()
            if answer.get("read_id") == read_id:
                return answer


def send_mail(
    server: Server,
    *,
    to: str,
    body: str,
    subject: str = "Booking",
    sender: str = "agent@example.com",
    message_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> dict:
    """Send one plain-text message over SMTP; returns smtplib's refused-recipients dict (empty when all accepted)."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    if message_id:
        msg["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as smtp:
        return smtp.send_message(msg)
