"""`manage.py simulate`: a busy car park for a running Parkgate, over the real protocols.

Lane controllers are enrolled (the enrol_device service, as `manage.py enrol_device` does, then the one-time code is
exchanged over HTTP like real hardware does) and connect to /ws/device/: they say hello, send heartbeats with their
barrier states, answer barrier commands, and send entries for real bookings that are due, exits for cars on site
and now and then an unknown plate. Agents' booking emails go to the SMTP server in the `labels` format: a first
batch at the start (--bookings), so that a new demo world has cars due at once, then --emails a minute, so new
bookings keep arriving. Open /dashboard/ meanwhile to watch it live. It doubles as a load generator (--rate).

Runs with the same DATABASE_URL as the server (it reads which bookings are due and which cars are on site).
"""

import asyncio
import json
import random
import signal
import smtplib
import string
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import httpx
import websockets
from asgiref.sync import sync_to_async
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.access import services as access
from apps.access.models import Visit
from apps.bookings.models import Booking
from apps.carparks.models import CarPark, Lane
from project import simflights
from project.management.commands.serve import host_port

AGENT_MAILBOX = "skypark@bookings.parkgate.test"
UNKNOWN_SHARE = 0.1  # share of entry reads with a plate nobody booked
NAMES = ["Ada Lovelace", "Alan Turing", "Grace Hopper", "Tim Berners-Lee", "Karen Spärck Jones", "Tony Hoare"]


@dataclass
class LanePair:
    carpark: str
    entry: str
    exit: str


@dataclass
class Stats:
    sent: int = 0
    decisions: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    commands: int = 0
    emails: int = 0

    def line(self) -> str:
        """The totals so far, and the decisions' round trips since the last line (none: said so, not 0 ms)."""
        lat = sorted(self.latencies)
        self.latencies.clear()
        timing = "no decision since the last line"
        if lat:
            p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
            timing = f"decision p50 {p50 * 1000:.0f} ms p99 {p99 * 1000:.0f} ms"
        actions = " ".join(f"{k}={v}" for k, v in sorted(self.decisions.items()))
        return f"reads {self.sent} ({actions}); {timing}; commands answered {self.commands}; emails {self.emails}"


def lane_pairs() -> list[LanePair]:
    """Each car park's entry lanes paired with its exit lanes (LHR-T5: N-IN/N-OUT, S-IN/S-OUT; MAN-T2: IN1/OUT1)."""
    pairs = []
    for carpark in CarPark.objects.order_by("code"):
        entries = list(Lane.objects.filter(carpark=carpark, direction="entry").values_list("code", flat=True))
        exits = list(Lane.objects.filter(carpark=carpark, direction="exit").values_list("code", flat=True))
        pairs += [LanePair(carpark.code, e, x) for e, x in zip(entries, exits, strict=False)]
    return pairs


def due_plates(carpark_code: str, limit: int = 200) -> list[str]:
    """Plates of confirmed bookings that may enter now (arrival - 2 h <= now <= departure)."""
    now = timezone.now()
    rows = Booking.objects.filter(
        carpark__code=carpark_code,
        status=Booking.Status.CONFIRMED,
        arrival__lte=now + timedelta(minutes=110),
        departure__gte=now,
    ).values_list("vehicles__registration", flat=True)[:limit]
    return [plate for plate in rows if plate]


def plates_on_site(carpark_code: str, limit: int = 200, stay: timedelta = timedelta(seconds=60)) -> list[str]:
    """Plates of cars that have been on site for a while (so that occupancy builds up before cars leave)."""
    visits = Visit.objects.filter(
        carpark__code=carpark_code, exited_at__isnull=True, entered_at__lte=timezone.now() - stay
    )
    return list(visits.values_list("plate", flat=True)[:limit])


def random_plate() -> str:
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    return "".join(random.choices(letters, k=2)) + f"{random.randint(10, 99)} " + "".join(random.choices(letters, k=3))


def labels_email(carpark_code: str) -> EmailMessage:
    """An agent's booking email (labels format) for a car arriving within the hour."""
    local = datetime.now(ZoneInfo("Europe/London")).replace(second=0, microsecond=0)
    arrival = local + timedelta(minutes=random.randint(-20, 60))
    departure = arrival + timedelta(days=random.randint(1, 7), hours=random.randint(0, 12))
    ref = "SIM-" + "".join(random.choices(string.digits, k=8))
    body = "\n".join(
        [
            "Booking Status: New",
            f"Booking Reference: {ref}",
            f"Car Park: {carpark_code}",
            f"Customer Name: {random.choice(NAMES)}",
            "Email: traveller@example.com",
            f"Drop Off Date: {arrival:%d/%m/%Y}",
            f"Drop Off Time: {arrival:%H:%M}",
            f"Return Date: {departure:%d/%m/%Y}",
            f"Return Time: {departure:%H:%M}",
            f"Registration: {random_plate()}",
            "Total Price: £54.99",
            "Commission: £8.25",
            f"Return Flight: {simflights.demo_return_flight()}",
        ]
    )
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "bookings@skypark.example", AGENT_MAILBOX, f"Booking Confirmation {ref}"
    msg.set_content(body)
    return msg


class Controller:
    """One simulated lane controller: an entry and an exit lane of one car park."""

    def __init__(self, url: str, pair: LanePair, token: str, name: str, stats: Stats):
        self.url, self.pair, self.token, self.name, self.stats = url, pair, token, name, stats
        self.barriers = {pair.entry: "closed", pair.exit: "closed"}
        self.waiting: dict[str, tuple[float, asyncio.Future]] = {}
        self.seq = 0
        self.ws = None
        self.tasks: set[asyncio.Task] = set()
        self.lane_of: dict[str, str] = {}  # read id -> lane (an open decision's command is for the read's lane)

    async def run(self, stop: asyncio.Event) -> None:
        """Stay connected (reconnecting with backoff, as the protocol asks) until told to stop."""
        delay = 1.0
        while not stop.is_set():
            try:
                async with websockets.connect(
                    self.url, additional_headers={"Authorization": f"Bearer {self.token}"}
                ) as ws:
                    self.ws = ws
                    await ws.send(json.dumps({"type": "hello", "protocol": 1, "firmware": "sim-1.0", "buffered": 0}))
                    delay = 1.0
                    await asyncio.gather(self.receive(ws), self.heartbeats(ws), return_exceptions=False)
            except (OSError, websockets.WebSocketException) as exc:
                self.ws = None
                for _, future in self.waiting.values():
                    future.cancel()
                self.waiting.clear()
                if getattr(exc, "rcvd", None) is not None and exc.rcvd.code == 4401:
                    return  # revoked: do not retry
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, 60)

    async def heartbeats(self, ws) -> None:
        while True:
            await ws.send(json.dumps({"type": "heartbeat", "barriers": dict(self.barriers)}))
            await asyncio.sleep(20)

    async def receive(self, ws) -> None:
        async for text in ws:
            frame = json.loads(text)
            kind = frame.get("type")
            if kind == "decision" and frame["read_id"] in self.waiting:
                sent_at, future = self.waiting.pop(frame["read_id"])
                self.stats.latencies.append(time.perf_counter() - sent_at)
                future.set_result(frame)
                if frame.get("action") == "open" and frame.get("command_id") and not frame.get("duplicate"):
                    self.spawn(
                        self.execute(ws, {"command_id": frame["command_id"], "lane": self.lane_of[frame["read_id"]]})
                    )
            elif kind == "command":
                self.spawn(self.execute(ws, frame))

    def spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def execute(self, ws, command: dict) -> None:
        """Open the barrier for a few seconds and report the result."""
        lane = command.get("lane")
        self.barriers[lane] = "open"
        await ws.send(json.dumps({"type": "heartbeat", "barriers": dict(self.barriers)}))
        await ws.send(json.dumps({"type": "command_result", "command_id": command["command_id"], "status": "done"}))
        self.stats.commands += 1
        await asyncio.sleep(3)
        self.barriers[lane] = "closed"
        await ws.send(json.dumps({"type": "heartbeat", "barriers": dict(self.barriers)}))

    async def read(self, lane: str, plate: str) -> dict | None:
        """Send one plate read; returns its decision (None if the connection dropped meanwhile)."""
        if self.ws is None:
            return None
        self.seq += 1
        read_id = f"{self.name}-{int(time.time())}-{self.seq}"
        future = asyncio.get_running_loop().create_future()
        self.waiting[read_id] = (time.perf_counter(), future)
        self.lane_of[read_id] = lane
        captured = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        frame = {"type": "plate_read", "read_id": read_id, "lane": lane, "plate": plate, "score": 0.93}
        frame["captured_at"] = captured
        try:
            await self.ws.send(json.dumps(frame))
            decision = await asyncio.wait_for(future, 10)
        except (TimeoutError, asyncio.CancelledError, websockets.WebSocketException):
            self.waiting.pop(read_id, None)
            return None
        finally:
            self.lane_of.pop(read_id, None)
        self.stats.sent += 1
        self.stats.decisions[decision["action"]] = self.stats.decisions.get(decision["action"], 0) + 1
        return decision


class Command(BaseCommand):
    help = "Drive a running Parkgate with simulated lane controllers (WebSocket) and agents' emails (SMTP)."

    def add_arguments(self, parser):
        parser.add_argument("--lanes", type=int, default=3, help="lane controllers, each an entry + exit lane pair")
        parser.add_argument("--rate", type=float, default=1.0, help="plate reads per second, all lanes together")
        parser.add_argument("--emails", type=float, default=6.0, help="agents' booking emails per minute")
        parser.add_argument(
            "--bookings", type=int, default=10, help="booking emails sent at the start, so that cars are due at once"
        )
        parser.add_argument("--duration", type=float, default=0, help="seconds to run (0: until Ctrl-C)")
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="the server's HTTP address")
        parser.add_argument("--smtp", default="127.0.0.1:2525", help="the server's SMTP HOST:PORT")

    def handle(self, *args, lanes, rate, emails, bookings, duration, url, smtp, **options):
        if lanes < 1 or rate <= 0 or emails < 0 or bookings < 0 or duration < 0:
            raise CommandError("--lanes must be >= 1, --rate > 0, --emails, --bookings and --duration >= 0")
        self.url, self.smtp = url.rstrip("/"), host_port(smtp, "--smtp")
        pairs = lane_pairs()
        if not pairs:
            raise CommandError("no car park with entry and exit lanes: run `manage.py seed_demo` first")
        try:
            httpx.get(f"{self.url}/healthz", timeout=3).raise_for_status()
        except httpx.HTTPError as exc:
            raise CommandError(f"no Parkgate at {self.url} ({exc}); start it with `manage.py serve`") from None
        self.stats = Stats()
        controllers = [self.enrol(pairs[i % len(pairs)], i + 1) for i in range(lanes)]
        self.stdout.write(
            f"{len(controllers)} lane controllers, {rate:g} reads/s, {bookings} booking emails now and {emails:g}/min. "
            f"Watch {self.url}/dashboard/ (Ctrl-C stops)."
        )
        try:
            asyncio.run(self.main(controllers, rate, emails, bookings, duration))
        finally:
            for controller in controllers:
                access.device_revoke(device_id=controller.device_id)
            self.stdout.write(f"done: {self.stats.line()}")

    def enrol(self, pair: LanePair, number: int) -> Controller:
        device, issued = access.device_create(
            carpark_code=pair.carpark, lane_codes=[pair.entry, pair.exit], name=f"simulator {number}"
        )
        answer = httpx.post(
            f"{self.url}/api/device/v1/enrol",
            json={"code": issued.code, "serial": f"SIM-{number}", "model": "simulator"},
        )
        if answer.status_code != 201:
            raise CommandError(f"enrolment refused: {answer.status_code} {answer.text}")
        ws_url = self.url.replace("http", "ws", 1) + answer.json()["ws_path"]
        controller = Controller(ws_url, pair, answer.json()["token"], f"sim{number}", self.stats)
        controller.device_id = str(device.id)
        return controller

    async def main(
        self, controllers: list[Controller], rate: float, emails: float, bookings: int, duration: float
    ) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if duration:
            loop.call_later(duration, stop.set)
        tasks = [asyncio.create_task(c.run(stop)) for c in controllers]
        tasks.append(asyncio.create_task(self.traffic(controllers, rate, stop)))
        if emails or bookings:
            tasks.append(asyncio.create_task(self.mail(controllers, emails, bookings, stop)))
        tasks.append(asyncio.create_task(self.report(stop)))
        tasks.append(asyncio.create_task(self.flights(stop)))
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def traffic(self, controllers: list[Controller], rate: float, stop: asyncio.Event) -> None:
        """Reads at `rate` per second in total, spread over the controllers; each read is its own task so that a
        slow decision never slows the rate."""
        interval, next_at = 1 / rate, time.perf_counter()
        while not stop.is_set():
            controller = random.choice(controllers)
            controller.spawn(self.one_car(controller))
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

    async def one_car(self, controller: Controller) -> None:
        """One car at the lanes: a booked car arriving (most often), a car on site leaving, or a stranger."""
        pair = controller.pair
        on_site = await sync_to_async(plates_on_site)(pair.carpark)
        due = await sync_to_async(due_plates)(pair.carpark)
        choices = [("arrive", 0.6 if due else 0), ("leave", 0.3 if on_site else 0), ("stranger", UNKNOWN_SHARE)]
        kind = random.choices([k for k, _ in choices], weights=[w for _, w in choices])[0]
        if kind == "arrive":
            await controller.read(pair.entry, random.choice(due))
        elif kind == "leave":
            await controller.read(pair.exit, random.choice(on_site))
        elif due or on_site or random.random() < UNKNOWN_SHARE:  # an idle car park sees few strangers
            await controller.read(pair.entry, random_plate())

    async def mail(self, controllers: list[Controller], per_minute: float, first: int, stop: asyncio.Event) -> None:
        """`first` emails at once (one SMTP session), then one every 60 / `per_minute` seconds until stopped."""
        carparks = sorted({c.pair.carpark for c in controllers})
        batch = first or 1
        while not stop.is_set():
            messages = [labels_email(random.choice(carparks)) for _ in range(batch)]
            try:
                await asyncio.to_thread(self.send_mail, messages)
            except (OSError, smtplib.SMTPException) as exc:
                self.stderr.write(f"email not sent: {exc}")
            if not per_minute:
                return
            await asyncio.sleep(60 / per_minute)
            batch = 1

    def send_mail(self, messages: list[EmailMessage]) -> None:
        with smtplib.SMTP(*self.smtp, timeout=10) as smtp:
            for message in messages:
                smtp.send_message(message)
                self.stats.emails += 1

    async def flights(self, stop: asyncio.Event, every_s: float = 20) -> None:
        """Now and then a booked return flight's status over the flight-status feed (mostly a delay)."""
        token = await sync_to_async(simflights.feed_token)()
        while not stop.is_set():
            await asyncio.sleep(every_s)
            update = await sync_to_async(simflights.flight_update)()
            if update is not None:
                try:
                    await asyncio.to_thread(simflights.send, self.url, token, update)
                except httpx.HTTPError as exc:
                    self.stderr.write(f"flight status not sent: {exc}")

    async def report(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(5)
            self.stdout.write(self.stats.line())
