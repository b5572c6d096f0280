"""Benchmark: 1,000 staff dashboards on `serve` processes sharing Redis while lane controllers send entries at 50/s.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/parkgate_bench REDIS_URL=redis://127.0.0.1:6379/9 \\
        .venv/bin/python bench/dashboard.py [--dashboards 1000] [--rate 50] [--seconds 15] [--servers 2] [--lanes 10]
        [--lane-servers 1] [--dashboard-nice 0] [--rounds 2]

It creates (and drops at the end) a throwaway database `<name>_bench_dashboard` beside DATABASE_URL, migrates it,
seeds the demo world and adds bookings; REDIS_URL must be a Redis DB of its own (it is flushed). The last line printed
is one JSON object with the figures of both modes.
Two modes, each on freshly started --servers `serve` processes laid out as docs/architecture.md (Deployment) says:
the first --lane-servers of them take only lane controllers (SERVE_WEBSOCKETS=device), the others only dashboards
(0: every process takes both). In each mode, the lane controllers (--lanes of them, spread over the lanes' processes)
send entries for fresh bookings at --rate for --seconds (open loop), --rounds times alone then with --dashboards
dashboard clients watching LHR-T5 (spread over the dashboards' processes, connected for that run only),
and alone once more at the end; the decision latencies of the alone runs and of the runs with dashboards are pooled
(one 15 s run's p99 is its 8th-worst decision: on a shared machine one hiccup moves it):
  1. coalesced: Parkgate's fan-out (consumers/fanout.py);
  2. baseline: DASHBOARD_FANOUT=direct, a bare Channels group_send of every event to every socket.
It prints the lanes' decision latency (p50/p99) in every run and pooled, and the CPU the serve processes used; with the
dashboards: the lag from a decision to each dashboard holding the resulting occupancy (p50/p99/max over every
dashboard x decision), how many dashboards ended up holding the final occupancy, frames/s received by all
dashboards, and the serve processes' memory per idle dashboard connection (RSS delta / connections).

How the lag is measured: entries only, each opening a visit, so after the k-th `open` decision reached its lane the
occupancy is at least start + k. Each dashboard records when it first held each occupancy (wall clock, one machine);
lag(k, dashboard) = first time it held >= start + k minus the time the k-th decision arrived (0 if earlier).
The dashboards run in a separate process from the lane controllers, so neither's event loop slows the other's timing;
they read a delta's occupancy from the frame's fixed prefix, not a full json.loads (checked against json.loads every
CHECK_EVERY-th frame): the 1,000 simulated browsers share the server's machine, and should take as little of it as
they can.
Plate-read decisions publish their `occupancy` event without a count (`null`: changed): the coalesced fan-out recounts
at flush; the direct baseline can only repeat the last count it saw, so its lag shows as inf (never held).
"""

import argparse
import asyncio
import json
import logging
import multiprocessing
import os
import re
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("PARKGATE_HTTPS", "0")

from bench.common import Steal, bench_database_url, print_steal, recreate_database  # noqa: E402  (after the path is set)

CARPARK = "LHR-T5"
PASSWORD = "bench-password-1"  # noqa: S105  (a throw-away user in the benchmark's own database)


# --- statistics ------------------------------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def ms(value: float) -> str:
    return f"{value * 1000:.0f} ms"


# --- the dashboards' process -------------------------------------------------------------------------------------

# A delta frame starts with its top-level fields in a fixed order (consumers/fanout.py Delta.frame, json.dumps'
# default separators), the occupancy before any nested list: matching that prefix reads the occupancy without
# parsing the whole frame (json.loads was a third of this process's CPU per frame, on the server's 2 cores). Any
# frame that does not match (a snapshot, another layout) is parsed in full; every CHECK_EVERY-th frame is parsed in
# full too and must agree, so the shortcut cannot silently misread.
DELTA_PREFIX = re.compile(
    r'\{"type": "delta", "carpark": "([^"\\]*)", "carpark_id": -?\d+, "occupancy": (null|-?\d+)[,}]'
)
CHECK_EVERY = 997


def parsed_occupancy(text: str) -> int | None:
    msg = json.loads(text)
    if msg["type"] == "snapshot":
        return next(c["occupancy"] for c in msg["carparks"] if c["code"] == CARPARK)
    if msg["type"] == "delta" and msg["carpark"] == CARPARK:
        return msg["occupancy"]
    return None


def held_occupancy(text: str, check: bool = False) -> int | None:
    """The occupancy of CARPARK a frame gives the dashboard (None: the frame says nothing about it)."""
    match = DELTA_PREFIX.match(text)
    if match is None:
        return parsed_occupancy(text)
    occ = None if match[1] != CARPARK or match[2] == "null" else int(match[2])
    if check and occ != parsed_occupancy(text):
        raise AssertionError(f"the prefix scan read {occ!r} from {text[:300]!r}")
    return occ


def dashboards_process(urls: list[str], cookie: str, count: int, conn) -> None:
    asyncio.run(_dashboards(urls, cookie, count, conn))


async def _dashboards(urls: list[str], cookie: str, count: int, conn) -> None:
    import websockets

    loop = asyncio.get_running_loop()
    records: list[list[tuple[float, int]]] = [[] for _ in range(count)]
    frames = [0]
    misread: list[str] = []

    async def connect(i: int):
        url = urls[i % len(urls)]
        origin = url.replace("ws://", "http://").split("/ws/")[0]
        return await websockets.connect(
            url, additional_headers={"Cookie": cookie, "Origin": origin}, max_queue=None, ping_interval=None
        )

    async def listen(ws, rec: list) -> None:
        last = None
        async for text in ws:
            frames[0] += 1
            try:
                occ = held_occupancy(text, check=frames[0] % CHECK_EVERY == 0)
            except AssertionError as exc:  # reported: the run fails rather than measure with a wrong reader
                misread.append(str(exc))
                continue
            if occ is not None and occ != last:
                rec.append((time.time(), occ))
                last = occ

    sockets, listeners, failed = [], [], 0
    for start in range(0, count, 50):  # in batches, as a room of screens coming up would
        batch = await asyncio.gather(
            *(connect(i) for i in range(start, min(count, start + 50))), return_exceptions=True
        )
        for ws in batch:
            if isinstance(ws, BaseException):
                failed += 1
                continue
            listeners.append(asyncio.create_task(listen(ws, records[len(sockets)])))
            sockets.append(ws)
    records = records[: len(sockets)]
    conn.send(("connected", len(sockets), failed))
    while True:
        command = await loop.run_in_executor(None, conn.recv)
        if command == "reset":
            frames[0] = 0
            for rec in records:
                del rec[:-1]  # keep the state held at the start of the measurement
            conn.send("ok")
        elif command == "report":
            conn.send((frames[0], records, misread))
        elif command == "quit":
            for task in listeners:
                task.cancel()
            await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
            conn.send("bye")
            return


# --- the lanes (main process) ------------------------------------------------------------------------------------


async def drive_lanes(ws_url_for, tokens: list[tuple[str, str]], plates: list[str], rate: float, seconds: float):
    """Send entries at `rate` per second for `seconds` over the controllers; returns [(arrived_at, latency, action)]."""
    import websockets

    results: list[tuple[float, float, str]] = []
    controllers = []
    for i, (token, lane) in enumerate(tokens):
        ws = await websockets.connect(ws_url_for(i), additional_headers={"Authorization": f"Bearer {token}"})
        await ws.send(json.dumps({"type": "hello", "protocol": 1, "firmware": "bench", "buffered": 0}))
        while json.loads(await ws.recv())["type"] != "welcome":
            pass
        await ws.send(json.dumps({"type": "heartbeat", "barriers": {lane: "closed"}}))
        controllers.append((ws, lane, {}))

    async def listen(ws, pending: dict) -> None:
        async for text in ws:
            frame = json.loads(text)
            if frame.get("type") == "decision" and frame["read_id"] in pending:
                sent = pending.pop(frame["read_id"])
                results.append((time.time(), time.perf_counter() - sent, frame["action"]))

    listeners = [asyncio.create_task(listen(ws, pending)) for ws, _, pending in controllers]
    total = int(rate * seconds)
    interval, next_at = 1 / rate, time.perf_counter()
    for n in range(total):
        ws, lane, pending = controllers[n % len(controllers)]
        read_id = f"b{time.time_ns()}-{n}"
        pending[read_id] = time.perf_counter()
        captured = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        await ws.send(
            json.dumps(
                {"type": "plate_read", "read_id": read_id, "lane": lane, "plate": plates[n], "score": 0.95}
                | {"captured_at": captured}
            )
        )
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    deadline = time.perf_counter() + 15
    while len(results) < total and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    for task in listeners:
        task.cancel()
    for ws, _, _ in controllers:
        await ws.close()
    return results


# --- setup -----------------------------------------------------------------------------------------------------


def setup_world(args) -> None:
    import django

    django.setup()
    import redis
    from django.core.management import call_command

    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()  # its own Redis DB: no groups left by earlier runs
    call_command("migrate", verbosity=0)
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    from apps.staff.services import staff_member_set

    staff_member_set(username="bench", password=PASSWORD, carpark_codes=[CARPARK], role="operator")


def make_bookings(count: int, tag: str) -> list[str]:
    """Confirmed bookings due now, one plate each, straight into the tables (fast; bookings are not under test)."""
    from django.utils import timezone

    from apps.bookings.models import Booking, Customer, Vehicle
    from apps.carparks.models import CarPark

    carpark = CarPark.objects.get(code=CARPARK)
    now = timezone.now()
    customer = Customer.objects.create(name="Bench")
    bookings = Booking.objects.bulk_create(
        Booking(
            reference=f"B{tag}{i:06d}",
            carpark=carpark,
            customer=customer,
            arrival=now - timedelta(minutes=30),
            departure=now + timedelta(days=1),
            source="staff",
            price=10,
            currency="GBP",
        )
        for i in range(count)
    )
    plates = [f"{tag}{i:05d}" for i in range(count)]
    Vehicle.objects.bulk_create(
        Vehicle(booking=b, registration_raw=p, registration=p, lookalike_key=p)
        for b, p in zip(bookings, plates, strict=True)
    )
    return plates


def analyze() -> None:
    """Fresh planner statistics, as autovacuum keeps them on a live database. This machine's PostgreSQL runs with
    autovacuum off: without this, the statistics of the freshly seeded (nearly empty) tables stay in force while
    every run adds bookings, visits and reads, and the decisions' plans age round after round."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def occupancy() -> int:
    from apps.access.models import Visit

    return Visit.objects.filter(carpark__code=CARPARK, exited_at__isnull=True).count()


def enrol_lanes(count: int) -> list[tuple[str, str]]:
    """Lane controllers' tokens (the enrolment services directly: the HTTP endpoint is rate limited)."""
    from apps.access import services

    tokens = []
    for i in range(count):
        lane = ("N-IN", "S-IN")[i % 2]
        _, issued = services.device_create(carpark_code=CARPARK, lane_codes=[lane], name=f"bench {i}")
        tokens.append((services.device_enrol(code=issued.code, serial=f"B{i}", model="bench").token, lane))
    return tokens


def session_cookie(server) -> str:
    import httpx

    client = httpx.Client(base_url=server.http)
    form = client.get("/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    client.post("/accounts/login/", data={"username": "bench", "password": PASSWORD, "csrfmiddlewaretoken": token})
    return "; ".join(f"{k}={v}" for k, v in client.cookies.items())


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def start_servers(args, fanout: str):
    """--servers `serve` processes: the first --lane-servers accept only lane controllers, the others only dashboards
    (0: every process accepts both), the documented deployment (docs/architecture.md); the dashboards' processes run
    at --dashboard-nice. Returns (all servers, the lanes' servers, the dashboards' servers)."""
    from tests.support import start_server

    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_SETTINGS")}
    env.update(DEBUG="0", PARKGATE_HTTPS="0", DASHBOARD_FANOUT=fanout, LOG_LEVEL="INFO", DB_POOL_MAX="10")
    split = args.lane_servers
    if not 0 <= split < args.servers:
        sys.exit("--lane-servers must leave at least one of --servers for the dashboards")
    servers, lane_servers, dash_servers = [], [], []
    for i in range(args.servers):
        role = "device,dashboard" if not split else "device" if i < split else "dashboard"
        server = start_server(env | {"SERVE_WEBSOCKETS": role}, name=f"bench-dash-{fanout}-{i}", worker=False)
        servers.append(server)
        if "device" in role:
            lane_servers.append(server)
        if "dashboard" in role:
            dash_servers.append(server)
            if args.dashboard_nice:
                renice(server.serve.proc.pid, args.dashboard_nice)
    return servers, lane_servers, dash_servers


def renice(pid: int, nice: int) -> None:
    """Every thread of the process (Linux nice is per thread; threads started later inherit it)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        os.setpriority(os.PRIO_PROCESS, int(task.name), nice)


# --- phases ----------------------------------------------------------------------------------------------------


def lanes(args, servers, tag: str, proc=None) -> dict:
    """Entries at --rate for --seconds on fresh bookings: the decisions, their latency, the CPU spent meanwhile."""
    servers, lane_servers, _ = servers
    plates = make_bookings(int(args.rate * args.seconds), tag=f"{tag}{int(time.time() * 10) % 1000000}")
    analyze()
    start_occupancy = occupancy()
    serve_pids = [s.serve.proc.pid for s in servers]
    lane_pids = [s.serve.proc.pid for s in lane_servers]
    cpu_before = sum(cpu_s(pid) for pid in serve_pids)
    lane_cpu_before = sum(cpu_s(pid) for pid in lane_pids)
    client_before = cpu_s(proc.pid) if proc else 0.0
    started = time.time()
    urls = [f"{s.ws}/ws/device/" for s in lane_servers]
    decisions = asyncio.run(drive_lanes(lambda i: urls[i % len(urls)], args.tokens, plates, args.rate, args.seconds))
    window = time.time() - started
    latencies = [lat for _, lat, _ in decisions]
    return {
        "started": started,
        "start_occupancy": start_occupancy,
        "decisions": len(decisions),
        "opens": sorted(t for t, _, action in decisions if action == "open"),
        "latencies": latencies,
        "decision_p50": pct(latencies, 0.5),
        "decision_p99": pct(latencies, 0.99),
        "serve_cpu_pct": 100 * (sum(cpu_s(pid) for pid in serve_pids) - cpu_before) / window,
        "lane_serve_cpu_pct": 100 * (sum(cpu_s(pid) for pid in lane_pids) - lane_cpu_before) / window,
        "client_cpu_pct": 100 * (cpu_s(proc.pid) - client_before) / window if proc else None,
        "load": os.getloadavg()[0],
    }


def lag_figures(run: dict, frames: int, records: list[list[tuple[float, int]]]) -> dict:
    """Per dashboard x decision: how long after the k-th `open` reached its lane the dashboard held start + k."""
    lags, holding_final = [], 0
    final = run["start_occupancy"] + len(run["opens"])
    for rec in records:
        if rec and rec[-1][1] >= final:
            holding_final += 1
        i = 0
        for k, decided_at in enumerate(run["opens"], start=1):
            target = run["start_occupancy"] + k
            while i < len(rec) and rec[i][1] < target:
                i += 1
            lags.append(float("inf") if i == len(rec) else max(0.0, rec[i][0] - decided_at))
    finite = [lag for lag in lags if lag != float("inf")]
    return {
        "lags": lags,
        "lag_p50": pct(lags, 0.5),
        "lag_p99": pct(lags, 0.99),
        "lag_max_seen": max(finite) if finite else float("nan"),
        "never_held": len(lags) - len(finite),
        "holding_final": holding_final,
        "frames_per_s": frames / (time.time() - run["started"]),
    }


def run_mode(name: str, args, fanout: str) -> dict:
    """On fresh servers: --rounds times lanes alone then lanes with the dashboards connected, and lanes alone once
    more at the end (the machine's load drifts and is shared: alone runs bracket every run with dashboards). The
    decision latencies of all alone runs and of all runs with dashboards are pooled; so are the lags."""
    servers = start_servers(args, fanout)
    everyone, _, dash_servers = servers
    try:
        # Unmeasured warm-up: a fresh server's first reads open its connections and prepare its statements.
        lanes(argparse.Namespace(**vars(args) | {"seconds": 2}), servers, "W")
        alone, withs, lags, idle_kb, rounds = [], [], [], [], []
        for r in range(args.rounds):
            alone.append(lanes(args, servers, f"A{r}"))
            rss_before = sum(rss_kb(s.serve.proc.pid) for s in everyone)
            cookie = session_cookie(dash_servers[0])
            conn, child = multiprocessing.Pipe()
            proc = multiprocessing.get_context("spawn").Process(
                target=dashboards_process,
                args=([f"{s.ws}/ws/dashboard/" for s in dash_servers], cookie, args.dashboards, child),
                daemon=True,
            )
            proc.start()
            _, connected, failed = conn.recv()
            time.sleep(5)  # idle: snapshots sent, buffers settled
            rss_after = sum(rss_kb(s.serve.proc.pid) for s in everyone)
            idle_kb.append((rss_after - rss_before) / max(connected, 1))
            conn.send("reset")
            conn.recv()
            run = lanes(args, servers, f"B{r}", proc)
            withs.append(run)
            time.sleep(args.settle)
            conn.send("report")
            frames, records, misread = conn.recv()
            if misread:
                raise RuntimeError(f"the dashboards' frame reader disagreed with json.loads: {misread[:3]}")
            figures = lag_figures(run, frames, records)
            lags += figures.pop("lags")
            rounds.append(figures | {"connected": connected, "failed": failed})
            conn.send("quit")
            conn.recv()
            proc.join(10)
            time.sleep(2)
        alone.append(lanes(args, servers, "C"))
        finite = [lag for lag in lags if lag != float("inf")]
        return {
            "mode": name,
            "alone": alone,
            "with": withs,
            "without_p50": pct([x for run in alone for x in run["latencies"]], 0.5),
            "without_p99": pct([x for run in alone for x in run["latencies"]], 0.99),
            "with_p50": pct([x for run in withs for x in run["latencies"]], 0.5),
            "with_p99": pct([x for run in withs for x in run["latencies"]], 0.99),
            "connected": min(f["connected"] for f in rounds),
            "failed": sum(f["failed"] for f in rounds),
            "kb_per_idle": idle_kb[0],  # the first connect: later rounds reuse memory the first one freed
            "lag_p50": pct(lags, 0.5),
            "lag_p99": pct(lags, 0.99),
            "lag_max_seen": max(finite) if finite else float("nan"),
            "never_held": len(lags) - len(finite),
            "holding_final": min(f["holding_final"] for f in rounds),
            "frames_per_s": sum(f["frames_per_s"] for f in rounds) / len(rounds),
        }
    finally:
        for server in everyone:
            server.stop()


def decision_line(label: str, run: dict) -> str:
    client = f", dashboards' client process {run['client_cpu_pct']:.0f}%" if run["client_cpu_pct"] is not None else ""
    return (
        f"  {label:<22} {run['decisions']} decisions ({len(run['opens'])} open): p50 {ms(run['decision_p50'])}, "
        f"p99 {ms(run['decision_p99'])}; serve CPU {run['serve_cpu_pct']:.0f}% of a core (lanes' processes "
        f"{run['lane_serve_cpu_pct']:.0f}%){client}; "
        f"load avg {run['load']:.1f}"
    )


def report(result: dict, args) -> None:
    print(f"\n== {result['mode']}")
    runs = [("lanes alone:", run) for run in result["alone"]]
    for i, run in enumerate(result["with"]):
        runs.insert(2 * i + 1, ("with the dashboards:", run))
    for label, run in runs:
        print(decision_line(label, run))
    change = (result["with_p99"] - result["without_p99"]) / result["without_p99"] * 100
    print(
        f"  decisions, pooled: alone p50 {ms(result['without_p50'])} p99 {ms(result['without_p99'])}; with the "
        f"dashboards p50 {ms(result['with_p50'])} p99 {ms(result['with_p99'])}: p99 {change:+.0f}%"
    )
    print(f"  dashboards connected: {result['connected']} (failed {result['failed']})")
    print(f"  memory per idle dashboard connection (serve RSS delta): {result['kb_per_idle']:.1f} KB")
    print(
        f"  lag decision -> dashboard holds the occupancy: p50 {ms(result['lag_p50'])}, p99 {ms(result['lag_p99'])},"
        f" max seen {ms(result['lag_max_seen'])}; pairs never held {args.settle:g} s after the last entry:"
        f" {result['never_held']}"
    )
    print(f"  dashboards holding the final occupancy (worst round): {result['holding_final']} of {result['connected']}")
    print(f"  frames/s received by all dashboards: {result['frames_per_s']:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dashboards", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--servers", type=int, default=2, help="serve processes in all")
    parser.add_argument(
        "--lane-servers",
        type=int,
        default=1,
        help="of which this many take only the lane controllers, the others only dashboards (0: all take both)",
    )
    parser.add_argument("--dashboard-nice", type=int, default=0, help="nice value of the dashboards' serve processes")
    parser.add_argument("--lanes", type=int, default=10)
    parser.add_argument("--settle", type=float, default=10, help="seconds after the last entry before reporting")
    parser.add_argument("--rounds", type=int, default=2, help="alone + with-dashboards runs before the last alone")
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    if not os.environ.get("REDIS_URL"):
        sys.exit("set REDIS_URL to a Redis DB of the benchmark's own (it is flushed)")
    admin_url, db_url, db_name = bench_database_url(os.environ.get("DATABASE_URL", ""), "dashboard")
    recreate_database(admin_url, db_name)
    os.environ["DATABASE_URL"] = db_url  # the serve processes inherit it
    try:
        steal = Steal()
        results = run(args)
        results["steal"] = steal.share()
    finally:
        from django.db import connections

        connections.close_all()
        recreate_database(admin_url, db_name, drop_only=True)
    print_steal(measured=results["steal"])
    print(json.dumps(results, default=str))


def summary(result: dict) -> dict:
    keep = ("lag_p50", "lag_p99", "lag_max_seen", "never_held", "holding_final", "frames_per_s", "connected")
    keep += ("without_p50", "without_p99", "with_p50", "with_p99")
    return {k: result[k] for k in keep} | {
        "kb_per_idle": round(result["kb_per_idle"], 1),
        "decision_p99_change_pct": round((result["with_p99"] - result["without_p99"]) / result["without_p99"] * 100, 1),
        "serve_cpu_pct_with": [round(run["serve_cpu_pct"], 1) for run in result["with"]],
        "serve_cpu_pct_alone": [round(run["serve_cpu_pct"], 1) for run in result["alone"]],
        "lane_serve_cpu_pct_with": [round(run["lane_serve_cpu_pct"], 1) for run in result["with"]],
        "lane_serve_cpu_pct_alone": [round(run["lane_serve_cpu_pct"], 1) for run in result["alone"]],
        "client_cpu_pct": [round(run["client_cpu_pct"], 1) for run in result["with"]],
        "decision_p99_runs_alone": [run["decision_p99"] for run in result["alone"]],
        "decision_p99_runs_with": [run["decision_p99"] for run in result["with"]],
    }


def run(args) -> dict:
    setup_world(args)
    args.tokens = enrol_lanes(args.lanes)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    layout = (
        f"{args.lane_servers} for the lane controllers only, {args.servers - args.lane_servers} for the dashboards"
        f" only (nice {args.dashboard_nice})"
        if args.lane_servers
        else "each taking lanes and dashboards"
    )
    print(
        f"{args.dashboards} dashboards, {args.lanes} lane controllers, {args.servers} serve processes ({layout}); "
        f"entries at {args.rate:g}/s for {args.seconds:g} s per run; machine: {os.cpu_count()} CPUs"
    )
    results = {}
    coalesced = run_mode("coalesced fan-out (Parkgate)", args, "coalesced")
    report(coalesced, args)
    results["coalesced"] = summary(coalesced)
    if not args.skip_baseline:
        direct = run_mode("baseline: bare Channels group_send of every event to every socket", args, "direct")
        report(direct, args)
        results["baseline"] = summary(direct)
    return results


if __name__ == "__main__":
    main()
