"""The drill's load: lane controllers and staff dashboards over wss through nginx, reconnecting as real ones do, and
agents sending booking mail straight to the `serve` processes' SMTP ports (SMTP does not pass through nginx)."""

import asyncio
import json
import random
import smtplib
import ssl
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import websockets

TLS = ssl.create_default_context()
TLS.check_hostname, TLS.verify_mode = False, ssl.CERT_NONE  # the drill's self-signed certificate


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class Lane:
    """A lane controller: keeps every read until it has its decision; after a reconnect it sends those again
    (`retransmit`), as device-protocol.md asks."""

    def __init__(self, url: str, token: str, name: str, plate: str, every_s: float):
        self.url, self.token, self.name, self.plate, self.every_s = url, token, name, plate, every_s
        self.pending: dict[str, dict] = {}
        self.decisions: dict[str, list[dict]] = {}
        self.sent = 0
        self.outages: list[float] = []  # seconds from losing the connection to the next welcome
        self.paused = False
        self.seq = 0
        self.ws = None

    async def run(self, stop: asyncio.Event) -> None:
        lost_at = None
        while not (stop.is_set() and not self.pending):
            try:
                async with websockets.connect(
                    self.url, ssl=TLS, additional_headers={"Authorization": f"Bearer {self.token}"}, open_timeout=5
                ) as ws:
                    self.ws = ws
                    hello = {"type": "hello", "protocol": 1, "firmware": "drill", "buffered": len(self.pending)}
                    await ws.send(json.dumps(hello))
                    receiving = asyncio.create_task(self._receive(ws))
                    if lost_at is not None:
                        self.outages.append(time.monotonic() - lost_at)
                        lost_at = None
                    for frame in list(self.pending.values()):
                        await ws.send(json.dumps(frame | {"retransmit": True}))
                    sending = asyncio.create_task(self._send_loop(ws, stop))
                    await asyncio.wait({receiving, sending}, return_when=asyncio.FIRST_COMPLETED)
                    for task in (receiving, sending):
                        task.cancel()
                    if stop.is_set() and not self.pending:
                        return
            except (TimeoutError, OSError, websockets.WebSocketException):
                pass
            lost_at = lost_at or time.monotonic()
            await asyncio.sleep(0.2 + random.random() * 0.3)

    async def _send_loop(self, ws, stop: asyncio.Event) -> None:
        await asyncio.sleep(random.random() * self.every_s)
        while not stop.is_set():
            if not self.paused and len(self.pending) < 32:
                self.seq += 1
                lane = "N-IN" if self.seq % 2 else "N-OUT"
                frame = {
                    "type": "plate_read", "read_id": f"{self.name}-{self.seq:05d}", "lane": lane,
                    "plate": self.plate, "score": 0.95, "captured_at": now_iso(),
                }  # fmt: skip
                self.pending[frame["read_id"]] = frame
                self.sent += 1
                await ws.send(json.dumps(frame))
            await asyncio.sleep(self.every_s)
        while self.pending:  # stopping: wait for the last decisions on this connection
            await asyncio.sleep(0.05)

    async def _receive(self, ws) -> None:
        async for text in ws:
            frame = json.loads(text)
            read_id = frame.get("read_id")
            if frame.get("type") == "decision":
                self.decisions.setdefault(read_id, []).append(frame)
                self.pending.pop(read_id, None)
            elif frame.get("type") == "error" and read_id in self.pending and frame.get("code") != "retry":
                self.decisions.setdefault(read_id, []).append(frame)  # final for that read
                self.pending.pop(read_id, None)
            elif frame.get("type") == "command":
                await ws.send(json.dumps({"type": "command_result", "command_id": frame.get("command_id"),
                                          "status": "done"}))  # fmt: skip


class Dashboard:
    """A staff dashboard socket: the car park's occupancy from its snapshot and deltas; reconnects when dropped."""

    def __init__(self, url: str, cookie: str, origin: str, carpark_id: int):
        self.url, self.cookie, self.origin, self.carpark_id = url, cookie, origin, carpark_id
        self.occupancy: int | None = None
        self.reconnects, self.frames, self.last_frame_at = 0, 0, 0.0
        self.last_error = ""
        self.reasons: Counter[str] = Counter()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                headers = {"Cookie": self.cookie, "Origin": self.origin}
                async with websockets.connect(
                    self.url, ssl=TLS, additional_headers=headers, open_timeout=5, max_size=None
                ) as ws:
                    reader = asyncio.create_task(self._read(ws))
                    stopper = asyncio.create_task(stop.wait())
                    await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
                    stopper.cancel()
                    if reader.done():
                        error = reader.exception()
                        self.last_error = repr(error)[:100] if error else f"closed {ws.close_code} {ws.close_reason}"
                    reader.cancel()
            except (TimeoutError, OSError, websockets.WebSocketException) as exc:
                self.last_error = repr(exc)[:100]
            if not stop.is_set():
                self.reconnects += 1
                self.reasons[self.last_error[:60]] += 1
                await asyncio.sleep(0.2 + random.random() * 0.3)

    async def _read(self, ws) -> None:
        async for text in ws:
            frame = json.loads(text)
            self.frames, self.last_frame_at = self.frames + 1, time.monotonic()
            if frame.get("type") == "snapshot":
                for carpark in frame["carparks"]:
                    if carpark["id"] == self.carpark_id:
                        self.occupancy = carpark["occupancy"]
            elif (
                frame.get("type") == "delta"
                and frame.get("carpark_id") == self.carpark_id
                and (frame.get("occupancy") is not None)
            ):
                self.occupancy = frame["occupancy"]


LABELS = """Booking Status: New
Booking Reference: {ref}
Car Park: LHR-T5
Customer Name: Drill Customer
Drop Off Date: {arrival:%d/%m/%Y}
Drop Off Time: 10:00
Return Date: {departure:%d/%m/%Y}
Return Time: 18:00
Registration: DR{n:05d}
Total Price: 40.00
"""


def send_booking_mail(smtp_ports: list[int], ref: str, n: int) -> bool:
    """One agent's booking mail, to whichever `serve` answers (the next one when one refuses): True once a 250
    came back. A refused connection or a dropped session is not a 250: like an agent's MTA, it tries elsewhere."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "agent@example.com", "skypark@bookings.parkgate.test", f"Booking {ref}"
    msg["Message-ID"] = f"<{ref}@drill.example>"
    day = datetime.now(UTC) + timedelta(days=30)
    msg.set_content(LABELS.format(ref=ref, n=n, arrival=day, departure=day + timedelta(days=2)))
    for port in random.sample(smtp_ports, len(smtp_ports)) * 2:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
                smtp.send_message(msg)
                return True
        except (OSError, smtplib.SMTPException):
            time.sleep(0.1)
    return False
