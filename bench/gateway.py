"""Benchmark: lane controller decisions over WebSockets against a real `serve` on PostgreSQL + Redis, beside a
bare Channels JSON echo consumer in the same kind of process (daphne, same settings and channel layer).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/parkgate REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/gateway.py [--controllers 16] [--seconds 10] [--bookings 100000] [--growth]

Works in a throwaway database next to DATABASE_URL's (`<name>_bench_gateway`: created, migrated, seeded, dropped
afterwards; keep it with --keep). Seeds --bookings bookings (COPY; arrivals over +-10 days, so that about 29,000 of
100,000 are booked for now: enough plates for saturation to read each once; a realistic mix of statuses), the
history the departed ones left (their entry and exit reads and closed visits, and an unknown vehicle turned away per
five of them: a denied read and its alert) and 1,000 open visits, then VACUUM ANALYZE, as a car park's database that
grew over time; enrols --controllers devices (each an entry and an exit lane of one car park),
starts `manage.py serve` (no worker: jobs are not measured) and a daphne process serving bench/echo_asgi.py, then:
  - steady: 100 reads/s spread over the controllers for --seconds, after 1 s of the same not measured (warm-up,
    for each): round trip p50/p99, against the echo's; echo, floors and decisions take five turns each, so that
    the machine's drift during the run weighs on all alike. The floors (bench/echo_asgi.py) are the echo after a
    durable transaction of two round trips (lock; insert and COMMIT) and of one, with no decision work: what
    round trips and commits alone cost on this machine, beside what the decisions cost (not targets: a yardstick);
  - saturation: every controller keeps 32 reads in flight (the protocol's maximum) for --seconds: decisions/s,
    against the echo consumer's messages/s with the same frames and window (two turns each, 1 s warm-up each);
  - --growth: adds bookings up to 1,000,000 and measures the steady p50 again.
Reads are a mix: 60% entries of booked vehicles (open), 10% look-alike reads of them, 15% unknown vehicles (deny and
alert), 15% exits of vehicles inside (open, closes a visit). Client and server share the 2-core machine, so compare
ratios, not absolute figures. Each phase's host steal is printed too (/proc/stat: CPU time the hypervisor gave to
other guests of a shared host): a phase under much of it measured the host as much as the project. The last line is
one JSON object.
"""

import argparse
import asyncio
import collections
import json
import os
import random
import statistics
import string
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import Steal, bench_database_url, log, manage, percent, print_steal, recreate_database  # noqa: E402  (after the path is set)
from tests.support import Process, free_port, start_server  # noqa: E402  (after the path is set)

CARPARK = "BNCH"
WINDOW = 32
SLICES = 5  # turns of echo and decisions in the steady measurement
TURN_WARMUP_S = 0.3
TARGETS = {"p50_ratio_max": 3.0, "p99_ms_max": 20.0, "decisions_per_s_min": 1000, "saturation_ratio_min": 0.20}
FLOORS = (2, 1)  # round trips of bench/echo_asgi.py's floor consumers
SPREAD_DAYS = 10  # arrivals from this many days ago to this many ahead
LOOKALIKE = str.maketrans({"0": "O", "1": "I", "8": "B", "5": "S", "2": "Z", "6": "G"})


def wait_listening(port: int, timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    sys.exit(f"the echo server did not listen on {port}")


# --- Seeding (runs in a child process with Django set up on the bench database) -------------------------------


def random_plate(rng: random.Random) -> str:
    letters, digits = string.ascii_uppercase, string.digits
    return (
        "".join(rng.choice(letters) for _ in range(2))
        + "".join(rng.choice(digits) for _ in range(2))
        + "".join(rng.choice(letters) for _ in range(3))
    )


def history(departed: list, carpark_id: int, devices: list[tuple], rng: random.Random, copy_rows) -> None:
    """What departed bookings left behind: an entry and an exit read each (both opened the barrier) and the closed
    visit between them, and for every fifth one an unknown vehicle turned away at an entry lane (a denied read and
    its alert). A car park's database that reached 100,000 bookings holds these too; without them the decision's
    statements are planned for empty tables, and scan the rows the measurement adds."""
    from django.db import connection
    from psycopg.types.json import Jsonb

    from apps.core import plates

    if not departed:
        return
    specs = []  # (booking or None, plate, device, lane, at, action, reason)
    for n, (booking, plate) in enumerate(departed):
        device_id, entry_lane, exit_lane = devices[n % len(devices)]
        entered = booking.arrival + timedelta(minutes=rng.randrange(-60, 30))
        exited = booking.departure + timedelta(minutes=rng.randrange(-60, 30))
        specs.append((booking, plate, device_id, entry_lane, entered, "open", "booking"))
        specs.append((booking, plate, device_id, exit_lane, exited, "open", "departure"))
        if n % 5 == 0:
            specs.append((None, random_plate(rng) + "Z", device_id, entry_lane, entered, "deny", "unknown_vehicle"))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('access_plateread', 'id')) FROM generate_series(1, %s)", [len(specs)]
        )
        ids = [row[0] for row in cursor.fetchall()]
    reads, visits, alerts, entries = [], [], [], {}
    for read_pk, (booking, plate, device_id, lane_id, at, action, reason) in zip(ids, specs, strict=True):
        key, read_id = plates.lookalike_key(plate), f"h-{read_pk}"
        match = "exact" if booking else ""
        decision = {
            "type": "decision", "read_id": read_id, "action": action, "reason": reason, "match": match or None,
            "booking": booking.reference if booking else None, "command_id": None, "expires_at": None,
            "duplicate": False,
        }  # fmt: skip
        reads.append((
            read_pk, device_id, lane_id, carpark_id, read_id, plate, plate, key, 0.9, Jsonb([]), "", Jsonb({}), False,
            "", at, at, action, reason, match, booking.id if booking else None, Jsonb(decision), False,
        ))  # fmt: skip
        if booking is None:
            alerts.append((carpark_id, lane_id, plate, reason, read_pk, at))
        elif reason == "booking":
            entries[booking.id] = (read_pk, lane_id, at)
        else:
            entry_pk, entry_lane, entered = entries.pop(booking.id)
            visits.append((carpark_id, plate, key, entry_pk, read_pk, entry_lane, lane_id, entered, at, booking.id, ""))
    copy_rows(
        "access_plateread",
        ["id", "device_id", "lane_id", "carpark_id", "read_id", "plate_raw", "plate", "lookalike_key", "score",
         "candidates", "region", "vehicle", "retransmit", "local_action", "captured_at", "received_at", "action",
         "reason", "match", "booking_id", "decision", "unpaired_exit"],
        reads,
    )  # fmt: skip
    copy_rows(
        "access_visit",
        ["carpark_id", "plate", "lookalike_key", "entry_read_id", "exit_read_id", "entry_lane_id", "exit_lane_id",
         "entered_at", "exited_at", "booking_id", "closed_reason"],
        visits,
    )  # fmt: skip
    copy_rows("access_alert", ["carpark_id", "lane_id", "plate", "reason", "read_id", "created_at"], alerts)


def seed(total_bookings: int, controllers: int, plates_out: Path, start_at: int) -> None:
    """Bookings (COPY, in batches), and on the first call the car park, lanes, devices and 1,000 open visits."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    django.setup()
    from django.db import connection

    from apps.access import services
    from apps.access.models import Device, Visit
    from apps.bookings.models import Booking, Customer, Vehicle
    from apps.carparks.models import CarPark, Lane
    from apps.core import plates

    rng = random.Random(start_at or 1)
    now = datetime.now(UTC)
    first = start_at == 0
    if first:
        carpark = CarPark.objects.create(code=CARPARK, name="Bench", capacity=100_000)
        for n in range(controllers):
            Lane.objects.create(carpark=carpark, code=f"IN{n}", direction="entry")
            Lane.objects.create(carpark=carpark, code=f"OUT{n}", direction="exit")
    carpark = CarPark.objects.get(code=CARPARK)
    customer = Customer.objects.first() or Customer.objects.create(name="Bench customer")
    tokens = []
    if first:
        for n in range(controllers):
            _device, issued = services.device_create(carpark_code=CARPARK, lane_codes=[f"IN{n}", f"OUT{n}"])
            tokens.append(services.device_enrol(code=issued.code).token)
    lanes = {lane.code: lane.id for lane in Lane.objects.filter(carpark=carpark)}
    devices = [
        (next(d.id for d in Device.objects.filter(lanes__id=lanes[f"IN{n}"])), lanes[f"IN{n}"], lanes[f"OUT{n}"])
        for n in range(controllers)
    ]

    def rows(model, objects):
        fields = [f for f in model._meta.concrete_fields if not f.primary_key and not f.generated]
        names = [f.column for f in fields]
        values = ([f.get_db_prep_save(f.pre_save(obj, add=True), connection) for f in fields] for obj in objects)
        return names, values

    def copy(model, objects) -> None:
        copy_rows(model._meta.db_table, *rows(model, objects))

    def copy_rows(table: str, columns: list[str], values) -> None:
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy_,
        ):
            for row in values:
                copy_.write_row(row)

    eligible, inside = [], []
    batch = 50_000
    made = start_at
    while made < total_bookings:
        count = min(batch, total_bookings - made)
        bookings, vehicle_plates = [], []
        for i in range(count):
            arrival = now + timedelta(minutes=rng.randrange(-SPREAD_DAYS * 1440, SPREAD_DAYS * 1440))
            departure = arrival + timedelta(minutes=rng.randrange(360, 14 * 1440))
            if departure < now:
                status = rng.choice(["departed"] * 9 + ["no_show"])
            elif arrival < now:
                status = "confirmed" if rng.random() < 0.9 else "cancelled"
            else:
                status = "confirmed" if rng.random() < 0.95 else "cancelled"
            bookings.append(
                Booking(
                    reference=f"BN-{made + i:08d}",
                    carpark=carpark,
                    customer=customer,
                    arrival=arrival,
                    departure=departure,
                    status=status,
                    source="staff",
                    price=10,
                    currency="GBP",
                )
            )
            vehicle_plates.append(random_plate(rng))
        copy(Booking, bookings)
        ids = dict(Booking.objects.filter(reference__in=[b.reference for b in bookings]).values_list("reference", "id"))
        vehicles = []
        for booking, plate in zip(bookings, vehicle_plates, strict=True):
            booking.id = ids[booking.reference]
            vehicles.append(
                Vehicle(
                    booking_id=booking.id,
                    registration_raw=plate,
                    registration=plate,
                    lookalike_key=plates.lookalike_key(plate),
                )
            )
            if booking.status == "confirmed" and booking.arrival - timedelta(hours=2) <= now <= booking.departure:
                eligible.append((booking.id, plate))
        copy(Vehicle, vehicles)
        history(
            [(b, plate) for b, plate in zip(bookings, vehicle_plates, strict=True) if b.status == "departed"],
            carpark.id, devices, rng, copy_rows,
        )  # fmt: skip
        made += count
        log(f"  seeded {made:,} bookings")
    if first:
        rng.shuffle(eligible)
        inside, eligible = eligible[:1000], eligible[1000:]
        Visit.objects.bulk_create(
            Visit(
                carpark=carpark,
                plate=plate,
                lookalike_key=plates.lookalike_key(plate),
                booking_id=booking_id,
                entered_at=now - timedelta(hours=rng.randrange(1, 72)),
            )
            for booking_id, plate in inside
        )
        Booking.objects.filter(pk__in=[b for b, _ in inside]).update(status="arrived")
        with connection.cursor() as cursor:
            # A bulk load leaves work for autovacuum (insert-triggered), which would otherwise run during the
            # measurement; a car park's database that reached 100,000 bookings over time has been vacuumed.
            cursor.execute("VACUUM (ANALYZE)")
            checkpoint(cursor)
        plates_out.write_text(
            json.dumps({"eligible": [p for _, p in eligible], "inside": [p for _, p in inside], "tokens": tokens})
        )
    else:
        # After a bulk load of 900,000 bookings: vacuum too, so autovacuum does not run during the measurement (a
        # database that grew to 1M bookings over time has been vacuumed along the way).
        with connection.cursor() as cursor:
            cursor.execute(
                "VACUUM (ANALYZE) bookings_booking, bookings_vehicle, access_plateread, access_visit, access_alert"
            )
            checkpoint(cursor)


def checkpoint(cursor) -> None:
    """Write the bulk load's dirty pages out now, so that no checkpoint it triggers runs during the measurement (the
    growth load of 900,000 bookings set off four, of about 30 s each). Needs superuser or pg_checkpoint."""
    from django.db import DatabaseError

    try:
        cursor.execute("CHECKPOINT")
    except DatabaseError as exc:
        log(f"  no CHECKPOINT after seeding ({exc}); a checkpoint may stall the measurement")


# --- Load ------------------------------------------------------------------------------------------------------


class Workload:
    """Plates to read, each used once so that every entry is decided on its merits (not as a repeat). Vehicles
    leave in the order they came (the 1,000 seeded inside first), as in a car park where a stay lasts hours: an exit
    read of a vehicle whose entry read is still in flight would be an out-of-order pair, which the lanes never send."""

    def __init__(self, eligible: list[str], inside: list[str], seed: int = 7):
        self.rng = random.Random(seed)
        self.eligible, self.inside = list(eligible), collections.deque(inside)
        self.rng.shuffle(self.eligible)
        self.counter = 0
        self.short = 0  # reads meant for a booked vehicle after every booked plate was read: the mix has drifted

    def frame(self, controller: int) -> dict:
        self.counter += 1
        roll = self.rng.random()
        lane, plate = f"IN{controller}", None
        if roll < 0.15 and self.inside:
            lane, plate = f"OUT{controller}", self.inside.popleft()
        elif roll < 0.30:
            plate = random_plate(self.rng) + "X"  # nobody's
        elif self.eligible:
            plate = self.eligible.pop()
            if roll < 0.40:
                plate = plate.translate(LOOKALIKE)
                if random.random() < 0.5:
                    plate = plate.replace("O", "0", 1)
            else:
                self.inside.append(plate)  # it will be inside: may exit later
        else:
            plate = random_plate(self.rng) + "Y"
            self.short += 1
        return {
            "type": "plate_read", "read_id": f"b-{self.counter}", "lane": lane, "plate": plate, "score": 0.93,
            "captured_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }  # fmt: skip


async def connect(url: str, token: str | None, hello: bool) -> websockets.ClientConnection:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    ws = await websockets.connect(url, additional_headers=headers, max_size=None, compression=None)
    if hello:
        await ws.send(json.dumps({"type": "hello", "protocol": 1, "firmware": "bench", "buffered": 0}))
        while (json.loads(await ws.recv()))["type"] != "blocklist":
            pass
    return ws


async def saturate(conns, workload: Workload, seconds: float, echo: bool) -> tuple[float, dict]:
    """Every connection keeps WINDOW frames in flight; answers per second after a 1 s warm-up."""
    counts = {"answers": 0}
    reasons: dict[str, int] = {}
    stop_at = time.monotonic() + 1 + seconds
    measure_from = time.monotonic() + 1

    async def drive(index: int, ws) -> None:
        for _ in range(WINDOW):
            await ws.send(json.dumps(workload.frame(index)))
        while time.monotonic() < stop_at:
            answer = json.loads(await ws.recv())
            if time.monotonic() >= measure_from:
                counts["answers"] += 1
            if not echo:
                key = answer.get("reason") or answer.get("code")
                reasons[key] = reasons.get(key, 0) + 1
            await ws.send(json.dumps(workload.frame(index)))
        for _ in range(WINDOW):  # drain what is still in flight
            await ws.recv()

    await asyncio.gather(*(drive(i, ws) for i, ws in enumerate(conns)))
    return counts["answers"] / seconds, reasons


async def steady(conns, workload: Workload, seconds: float, rate: float = 100, warmup_s: float = 1.0) -> list[float]:
    """`rate` frames a second spread over the connections for `warmup_s` (not measured: each server thread's first
    use of its connection prepares statements), then for `seconds`: each frame's round trip in ms."""
    if warmup_s:
        await steady(conns, workload, warmup_s, rate, warmup_s=0)
    rtts: list[float] = []
    pending: dict[str, float] = {}

    async def reader(ws) -> None:
        while True:
            answer = json.loads(await ws.recv())
            sent = pending.pop(answer.get("read_id"), None)
            if sent is not None:
                rtts.append((time.perf_counter() - sent) * 1000)

    readers = [asyncio.create_task(reader(ws)) for ws in conns]
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        target = start + n / rate
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        index = n % len(conns)
        frame = workload.frame(index)
        pending[frame["read_id"]] = time.perf_counter()
        await conns[index].send(json.dumps(frame))
        n += 1
    deadline = time.monotonic() + 5
    while pending and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    for task in readers:
        task.cancel()
    return rtts


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(gateway_url, echo_url, tokens, workload, seconds, controllers) -> dict:
    results = {}
    echo_conns = [await connect(echo_url, None, hello=False) for _ in range(controllers)]
    floor_conns = {
        trips: [await connect(f"{echo_url}floor/{trips}/", None, hello=False) for _ in range(controllers)]
        for trips in FLOORS
    }
    dev_conns = [await connect(gateway_url, tokens[i], hello=True) for i in range(controllers)]
    # Echo, floors and decisions take turns (SLICES each), so that the machine's drift over the run (this VM's speed
    # varies by a third within an hour) weighs on all alike. Each turn starts with TURN_WARMUP_S not measured: the
    # side that sat idle during the others' turns (processes asleep, caches cold) is back at 100 reads/s.
    log("steady 100 reads/s: warm-up ...")
    await steady(echo_conns, Workload([], []), 1, warmup_s=0)
    for conns in floor_conns.values():
        await steady(conns, Workload([], []), 1, warmup_s=0)
    await steady(dev_conns, workload, 1, warmup_s=0)
    echo_rtts, rtts, floor_rtts = [], [], {trips: [] for trips in FLOORS}
    steal = Steal()
    for turn in range(SLICES):
        log(f"steady 100 reads/s: echo, floors, decisions ({turn + 1}/{SLICES}) ...")
        echo_rtts += await steady(echo_conns, Workload([], []), seconds / SLICES, warmup_s=TURN_WARMUP_S)
        for trips, conns in floor_conns.items():
            floor_rtts[trips] += await steady(conns, Workload([], []), seconds / SLICES, warmup_s=TURN_WARMUP_S)
        rtts += await steady(dev_conns, workload, seconds / SLICES, warmup_s=TURN_WARMUP_S)
    results["floors"] = {trips: round(statistics.median(values), 2) for trips, values in floor_rtts.items()}
    results["steady"] = {
        "decision_p50_ms": round(statistics.median(rtts), 2),
        "decision_p99_ms": round(pct(rtts, 0.99), 2),
        "decision_p90_ms": round(pct(rtts, 0.90), 2),
        "decision_max_ms": round(max(rtts), 2),
        "echo_p50_ms": round(statistics.median(echo_rtts), 2),
        "echo_p99_ms": round(pct(echo_rtts, 0.99), 2),
        "decisions": len(rtts),
        "steal": steal.share(),
    }
    echo_rates, rates, reasons = [], [], {}
    steal = Steal()
    for turn in range(2):
        log(f"saturation: echo, decisions ({turn + 1}/2) ...")
        echo_rates.append((await saturate(echo_conns, Workload([], []), seconds / 2, echo=True))[0])
        rate, turn_reasons = await saturate(dev_conns, workload, seconds / 2, echo=False)
        rates.append(rate)
        for reason, count in turn_reasons.items():
            reasons[reason] = reasons.get(reason, 0) + count
    rate, echo_rate = statistics.mean(rates), statistics.mean(echo_rates)
    results["saturation"] = {
        "decisions_per_s": round(rate, 1),
        "echo_messages_per_s": round(echo_rate, 1),
        "reasons": reasons,
        "steal": steal.share(),
    }
    for ws in echo_conns + dev_conns + [ws for conns in floor_conns.values() for ws in conns]:
        await ws.close()
    return results


async def steady_p50(gateway_url, tokens, workload, seconds, controllers) -> dict:
    conns = [await connect(gateway_url, tokens[i], hello=True) for i in range(controllers)]
    steal = Steal()
    rtts = await steady(conns, workload, seconds)
    stolen = steal.share()
    for ws in conns:
        await ws.close()
    return {
        "decision_p50_ms": round(statistics.median(rtts), 2),
        "decision_p99_ms": round(pct(rtts, 0.99), 2),
        "steal": stolen,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--controllers", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--bookings", type=int, default=100_000)
    parser.add_argument("--growth", action="store_true", help="then grow to 1,000,000 bookings and measure again")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--seed-only", nargs=3, metavar=("TOTAL", "START", "PLATES_JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed_only:
        total, start, out = args.seed_only
        seed(int(total), args.controllers, Path(out), int(start))
        return

    if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
        sys.exit("set DATABASE_URL (PostgreSQL) and REDIS_URL")
    admin_url, db_url, db_name = bench_database_url(os.environ["DATABASE_URL"], "gateway")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_SETTINGS"))}
    env.update(
        DATABASE_URL=db_url, SECRET_KEY="bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",  # noqa: S106
        DEBUG="0",
        PARKGATE_HTTPS="0", ALLOWED_HOSTS="localhost,127.0.0.1", LOG_LEVEL="INFO", DB_POOL_MAX="16",
    )  # fmt: skip
    plates_file = Path(f"/tmp/{db_name}-plates.json")
    log(f"database {db_name}: create, migrate, seed {args.bookings:,} bookings + 1,000 open visits")
    recreate_database(admin_url, db_name)
    manage(env, "migrate", "--no-input")
    t0 = time.monotonic()
    seed_cmd = [sys.executable, __file__, "--controllers", str(args.controllers), "--seed-only"]
    subprocess.run([*seed_cmd, str(args.bookings), "0", str(plates_file)], env=env, check=True)
    log(f"seeded in {time.monotonic() - t0:.1f} s")
    data = json.loads(plates_file.read_text())

    server = start_server(env, name="bench-gateway", worker=False)
    echo_port = free_port()
    echo = Process(
        ["-m", "daphne", "-b", "127.0.0.1", "-p", str(echo_port), "bench.echo_asgi:application"], env, "bench-echo"
    )
    echo_proc = subprocess.Popen(
        [sys.executable, *echo.args], cwd=ROOT, env=env | {"PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wait_listening(echo_port)
    workload = Workload(data["eligible"], data["inside"])
    try:
        results = asyncio.run(
            measure(
                f"{server.ws}/ws/device/",
                f"ws://127.0.0.1:{echo_port}/",
                data["tokens"],
                workload,
                args.seconds,
                args.controllers,
            )
        )
        if args.growth:
            log("growth: adding bookings up to 1,000,000 ...")
            t0 = time.monotonic()
            subprocess.run([*seed_cmd, "1000000", str(args.bookings), str(plates_file) + ".2"], env=env, check=True)
            log(f"grown in {time.monotonic() - t0:.1f} s")
            big = asyncio.run(
                steady_p50(f"{server.ws}/ws/device/", data["tokens"], workload, args.seconds, args.controllers)
            )
            small_p50 = results["steady"]["decision_p50_ms"]
            results["growth_1m"] = big | {"p50_growth": round(big["decision_p50_ms"] / small_p50 - 1, 3)}
    finally:
        echo_proc.terminate()
        server.stop()
        if not args.keep:
            recreate_database(admin_url, db_name, drop_only=True)

    steady_r, sat = results["steady"], results["saturation"]
    p50_ratio = steady_r["decision_p50_ms"] / steady_r["echo_p50_ms"]
    sat_ratio = sat["decisions_per_s"] / sat["echo_messages_per_s"]
    print(f"controllers: {args.controllers}, bookings: {args.bookings:,}, open visits: 1,000")
    print(
        f"steady 100 reads/s: decision p50 {steady_r['decision_p50_ms']} ms, p99 {steady_r['decision_p99_ms']} ms; "
        f"echo p50 {steady_r['echo_p50_ms']} ms, p99 {steady_r['echo_p99_ms']} ms; p50 ratio {p50_ratio:.2f} "
        f"(target <= {TARGETS['p50_ratio_max']}), p99 target <= {TARGETS['p99_ms_max']} ms; decision p90 "
        f"{steady_r['decision_p90_ms']} ms, max {steady_r['decision_max_ms']} ms"
    )
    floors = results["floors"]
    print(
        f"floors at 100 reads/s (the echo after a durable transaction on the loop's connections, no decision work): "
        f"two round trips (lock; insert + COMMIT) p50 {floors[2]} ms, ratio {floors[2] / steady_r['echo_p50_ms']:.2f}; "
        f"one round trip p50 {floors[1]} ms, ratio {floors[1] / steady_r['echo_p50_ms']:.2f}"
    )
    print(
        f"saturation: {sat['decisions_per_s']} decisions/s vs echo {sat['echo_messages_per_s']} messages/s, ratio "
        f"{sat_ratio:.2f} (targets >= {TARGETS['decisions_per_s_min']}/s and >= {TARGETS['saturation_ratio_min']})"
    )
    print(f"saturation decisions by reason: {sat['reasons']}")
    print(
        f"booked plates: {len(data['eligible']):,}, {len(workload.eligible):,} not read; reads meant for a booked "
        f"vehicle after they ran out (read as unknown ones): {workload.short:,}"
    )
    if "growth_1m" in results:
        g = results["growth_1m"]
        print(
            f"1,000,000 bookings: p50 {g['decision_p50_ms']} ms (growth {g['p50_growth']:.1%}, target < 20%); "
            f"host steal {percent(g['steal'])}"
        )
    print_steal(steady=steady_r["steal"], saturation=sat["steal"])
    summary = {
        "bench": "gateway",
        "controllers": args.controllers,
        "bookings": args.bookings,
        **{f"steady_{k}": v for k, v in steady_r.items()},
        "p50_ratio": round(p50_ratio, 2),
        **{f"floor{trips}_p50_ms": p50 for trips, p50 in floors.items()},
        **{f"floor{trips}_p50_ratio": round(p50 / steady_r["echo_p50_ms"], 2) for trips, p50 in floors.items()},
        "decisions_per_s": sat["decisions_per_s"],
        "echo_messages_per_s": sat["echo_messages_per_s"],
        "saturation_ratio": round(sat_ratio, 3),
        "saturation_steal": sat["steal"],
        "booked_plates_short": workload.short,
        **({"growth_1m_p50_ms": results["growth_1m"]["decision_p50_ms"],
            "growth_1m_p50_growth": results["growth_1m"]["p50_growth"],
            "growth_1m_steal": results["growth_1m"]["steal"]} if "growth_1m" in results else {}),
    }  # fmt: skip
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
