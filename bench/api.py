"""Benchmark: the agents' REST API over HTTP against a real `serve` on PostgreSQL + Redis, beside a baseline.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/parkgate REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/api.py [--clients 20] [--seconds 10]

Works in a throwaway database next to DATABASE_URL's (`<name>_bench_api`: created, migrated, seeded with the demo
world, dropped afterwards; keep it with --keep). Starts `manage.py serve` (and a worker) on it, makes one API token
per client with `create_api_token`, then measures three kinds of request, `--seconds` each, interleaved in
`--rounds` rounds (so the machine's other load falls on all alike), with `--clients` concurrent HTTP clients
(one keep-alive connection each):
  - baseline: GET /healthz, a bare async Django view returning a fixed JSON, in the same process;
  - quotes:   GET /api/v1/availability for random stays at LHR-T5 (token check, rate-limit count, tariff, capacity);
  - creations: POST /api/v1/bookings for random stays over a year (unique agent_ref; never full);
  - single:   GET /api/v1/availability for random 7-day stays at BNC-1, a car park as every one was before
              products: one product priced by its tariff alone (today's single-tariff quote);
  - products: the same at BNC-5: five products with two fares each, a 12-month calendar of daily ranges with
              length-of-stay bands (imported from CSV at set-up: its time is printed), weekday, lead-time and
              occupancy rules.
The rate limit is raised for the bench so that it counts every request without refusing any. Targets: quotes
>= 40% of the baseline's requests/s, creations >= 20%, products >= 35% of the baseline and >= 70% of single, no
failures. Client and server share the machine (and
other work on it), so compare ratios, not absolute figures. Each kind also gets the CPU milliseconds one request
cost `serve`, the worker (whose jobs may finish in the next kind's time), PostgreSQL and this client: where a
slow kind's time goes. The last line is one JSON object.
"""

import argparse
import asyncio
import itertools
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import CpuSeconds, Steal, bench_database_url, log, manage, print_steal, recreate_database  # noqa: E402  (after the path is set)
from tests.support import start_server  # noqa: E402  (after the path is set)

TARGETS = {"quotes": 0.40, "creations": 0.20, "products": 0.35}
AGAINST_SINGLE = {"products": 0.70}  # products' requests/s beside today's single-tariff quote
# Two bench car parks (see the docstring), made through the ORM and the calendar's CSV import in `manage.py shell`.
PRODUCTS_SETUP = """
import time
from datetime import date, timedelta
from decimal import Decimal as D
from apps.agents.models import Agent
from apps.carparks.models import CarPark, Tariff
from apps.products import calendar
from apps.products.models import Fare, PriceRule, Product
one = CarPark.objects.create(code="BNC-1", name="Bench single tariff", capacity=500)
Tariff.objects.create(carpark=one, daily_rate=D("12.00"), minimum_charge=D("20.00"))
five = CarPark.objects.create(code="BNC-5", name="Bench five products", capacity=500)
Tariff.objects.create(carpark=five, daily_rate=D("12.00"))
Product.objects.filter(carpark=five).update(code="P1", spaces=100)
for n in range(2, 6):
    Product.objects.create(carpark=five, code=f"P{n}", name=f"Product {n}", spaces=100, position=n)
rules = [("weekday", 5, 10), ("weekday", 6, 10), ("lead_time", 30, -10), ("occupancy", 70, 10), ("occupancy", 85, 20),
         ("occupancy", 95, 30)]
for p in Product.objects.filter(carpark=five):
    Fare.objects.get_or_create(product=p, code="flex", defaults={"name": "Flexible"})
    Fare.objects.create(product=p, code="saver", name="Saver", refundable=False, price_percent=D("-10"))
    PriceRule.objects.bulk_create(PriceRule(product=p, kind=k, threshold=t, percent=D(pc)) for k, t, pc in rules)
rows = ["product,brand,channel,starts,ends,daily_rate,minimum_charge,bands"]
for n in range(1, 6):
    for d in range(366):
        day = date.today() + timedelta(days=d)
        rows.append(f"P{n},,,{day},{day},{10 + n + d % 7}.00,20.00,4:9.00 8:8.00")
started = time.monotonic()
count = calendar.calendar_import(carpark=five, text="\\n".join(rows))
print(f"IMPORTED {count} ranges in {time.monotonic() - started:.2f} s")
Agent.objects.filter(code="skypark").update(product_codes="")
Agent.objects.get(code="skypark").carparks.add(one, five)
"""
_AGENT_REFS = itertools.count(1)  # unique across clients' rounds


@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds used in the measured part, by process

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def absorb(self, other: "Phase") -> None:
        self.latencies += other.latencies
        self.failures += other.failures
        self.seconds += other.seconds
        for name, seconds in other.cpu.items():
            self.cpu[name] = self.cpu.get(name, 0.0) + seconds

    def cpu_ms_per_request(self) -> dict[str, float]:
        count = len(self.latencies) or 1
        return {name: round(seconds * 1000 / count, 2) for name, seconds in self.cpu.items()}

    def summary(self) -> dict:
        return {
            "requests": len(self.latencies),
            "rps": round(self.rps, 1),
            "p50_ms": round(self.pct(0.50), 2),
            "p99_ms": round(self.pct(0.99), 2),
            "failures": len(self.failures),
            "cpu_ms_per_request": self.cpu_ms_per_request(),
        }


def random_stay(rng: random.Random) -> tuple[str, str]:
    start = date.today() + timedelta(days=rng.randrange(7, 372))
    end = start + timedelta(days=rng.randrange(0, 7))
    return f"{start.isoformat()}T{rng.randrange(5, 12):02d}:30", f"{end.isoformat()}T{rng.randrange(14, 23):02d}:15"


class Requests:
    """What each phase sends; returns (method, path, kwargs, expected status)."""

    def __init__(self, client_no: int):
        self.rng = random.Random(client_no)
        self.client_no = client_no
        self.n = 0

    def baseline(self):
        return "GET", "/healthz", {}, 200

    def quotes(self):
        arrival, departure = random_stay(self.rng)
        params = {"carpark": "LHR-T5", "arrival": arrival, "departure": departure}
        return "GET", "/api/v1/availability", {"params": params}, 200

    def _week(self, carpark: str):
        start = date.today() + timedelta(days=self.rng.randrange(1, 350))
        params = {"carpark": carpark, "arrival": f"{start}T08:00", "departure": f"{start + timedelta(days=6)}T20:00"}
        return "GET", "/api/v1/availability", {"params": params}, 200

    def single(self):
        return self._week("BNC-1")

    def products(self):
        return self._week("BNC-5")

    def creations(self):
        self.n += 1
        arrival, departure = random_stay(self.rng)
        body = {
            "agent_ref": f"BENCH-{self.client_no}-{next(_AGENT_REFS)}",
            "carpark": "LHR-T5",
            "arrival": arrival,
            "departure": departure,
            "customer": {"name": "Bench Customer", "email": "bench@example.com"},
            "vehicles": [{"registration": f"BN{self.client_no:02d}{self.n % 1000:03d}"[:8]}],
        }
        return "POST", "/api/v1/bookings", {"json": body}, 201


async def run_phase(base: str, tokens: list[str], name: str, seconds: float, warmup: float, cpu: CpuSeconds) -> Phase:
    phase = Phase(name)
    deadline_warm = time.monotonic() + warmup
    deadline = deadline_warm + seconds

    async def cpu_from_warm() -> dict[str, float]:
        await asyncio.sleep(max(0.0, deadline_warm - time.monotonic()))
        return cpu.now()

    async def client(no: int) -> None:
        make = getattr(Requests(no), name)
        headers = {"Authorization": f"Bearer {tokens[no]}"}
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30) as http:
            while (now := time.monotonic()) < deadline:
                method, path, kwargs, expected = make()
                started = time.perf_counter()
                try:
                    response = await http.request(method, path, **kwargs)
                    status, text = response.status_code, response.text
                except httpx.HTTPError as exc:
                    status, text = 0, repr(exc)
                elapsed = time.perf_counter() - started
                if now < deadline_warm:
                    continue
                if status == expected:
                    phase.latencies.append(elapsed)
                else:
                    phase.failures.append(f"{status}: {text[:200]}")

    started = time.monotonic()
    warm, *_ = await asyncio.gather(cpu_from_warm(), *(client(n) for n in range(len(tokens))))
    phase.seconds = time.monotonic() - started - warmup
    phase.cpu = {name: seconds - warm[name] for name, seconds in cpu.now().items() if name in warm}
    return phase


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=12.0, help="measured seconds per kind of request")
    parser.add_argument("--rounds", type=int, default=3, help="baseline/quotes/creations interleaved this often")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds not counted at the start of each part")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()
    if not os.environ.get("REDIS_URL"):
        sys.exit("bench/api.py needs REDIS_URL (the production shape: shared cache and job queue)")
    admin_url, db_url, db_name = bench_database_url(os.environ.get("DATABASE_URL", ""), "api")
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "DEBUG": "0",
        "PARKGATE_HTTPS": "0",
        "ALLOWED_HOSTS": "localhost,127.0.0.1",
        "LOG_LEVEL": "INFO",  # start_server waits for the "listening" lines
        "API_RATE_LIMIT_PER_MINUTE": "100000000",
        "DB_POOL_MAX": str(max(8, args.clients)),  # the API uses up to half: one thread per connection
    }
    log(f"database {db_name}: creating, migrating, seeding")
    recreate_database(admin_url, db_name)
    server = None
    try:
        manage(env, "migrate", "-v0")
        manage(env, "seed_demo")
        log("  " + manage(env, "shell", "-c", PRODUCTS_SETUP).strip().splitlines()[-1])
        tokens = [manage(env, "create_api_token", "--agent", "skypark").strip().splitlines()[-1]]
        more = "from apps.agents.services import api_token_create as t; print(*(t(agent_code='skypark') for _ in %s))"
        printed = manage(env, "shell", "-c", more % f"range({args.clients - 1})").split()
        tokens += [word for word in printed if word.startswith("pgk_")]
        if len(tokens) != args.clients:
            sys.exit(f"expected {args.clients} tokens, got {len(tokens)}")
        server = start_server(env, name="bench-api")
        log(f"serve on {server.http}; {args.clients} clients; {args.seconds:.0f} s per kind in {args.rounds} rounds")
        phases = {name: Phase(name) for name in ("baseline", "quotes", "creations", "single", "products")}
        steal = Steal()
        serve, worker = server.processes[0].proc.pid, server.processes[1].proc.pid
        cpu = CpuSeconds({"serve": serve, "worker": worker})
        for round_no in range(args.rounds):  # interleaved, so that the machine's other load hits all alike
            for name, phase in phases.items():
                part = asyncio.run(run_phase(server.http, tokens, name, args.seconds / args.rounds, args.warmup, cpu))
                phase.absorb(part)
                log(f"  round {round_no + 1} {name:9} {part.rps:8.1f} req/s  failures {len(part.failures)}")
        for name, phase in phases.items():
            s = phase.summary()
            log(
                f"  {name:9} {s['rps']:8.1f} req/s  p50 {s['p50_ms']:7.2f} ms  p99 {s['p99_ms']:7.2f} ms  "
                f"failures {s['failures']}"
            )
            log("            CPU ms per request: " + ", ".join(f"{k} {v}" for k, v in s["cpu_ms_per_request"].items()))
            for failure in phase.failures[:3]:
                log(f"    e.g. {failure}")
        stolen = steal.share()
    finally:
        if server is not None:
            server.stop()
        if not args.keep:
            recreate_database(admin_url, db_name, drop_only=True)

    base = phases["baseline"].rps or 1.0
    result = {"clients": args.clients, "seconds": args.seconds, "rounds": args.rounds, "cpus": os.cpu_count()}
    ok = True
    for name, phase in phases.items():
        result[name] = phase.summary()
        if name in TARGETS:
            ratio = phase.rps / base
            result[name]["ratio_to_baseline"] = round(ratio, 3)
            result[name]["target"] = TARGETS[name]
            met = ratio >= TARGETS[name] and not phase.failures
            if name in AGAINST_SINGLE:
                single = phase.rps / (phases["single"].rps or 1.0)
                result[name]["ratio_to_single"] = round(single, 3)
                result[name]["target_single"] = AGAINST_SINGLE[name]
                met &= single >= AGAINST_SINGLE[name]
                print(
                    f"{name}: {single:.0%} of single's {phases['single'].rps:.1f} req/s "
                    f"(target {AGAINST_SINGLE[name]:.0%})"
                )
            result[name]["met"] = met
            ok &= met
            print(
                f"{name}: {phase.rps:.1f} req/s = {ratio:.0%} of baseline {base:.1f} req/s "
                f"(target {TARGETS[name]:.0%}) p50 {phase.pct(0.5):.1f} ms p99 {phase.pct(0.99):.1f} ms "
                f"failures {len(phase.failures)} -> {'met' if met else 'NOT met'}"
            )
    result["all_targets_met"] = ok
    result["steal"] = stolen
    print_steal(measured=stolen)
    try:
        load = os.getloadavg()
        result["loadavg_1m"] = round(load[0], 2)
    except OSError:
        pass
    print(json.dumps(result))


if __name__ == "__main__":
    main()
