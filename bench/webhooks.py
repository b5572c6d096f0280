"""Benchmark: outbound webhooks. Booking events fanned out to 20 endpoints (one slow, one failing) by real
`manage.py worker` processes, beside a bare httpx POST loop to the same receiver in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/parkgate REDIS_URL=redis://127.0.0.1:6379/2 \\
        .venv/bin/python bench/webhooks.py [--events 10000] [--endpoints 20] [--workers 1] [--slow-s 2]
            [--steady-rate 5] [--steady-s 20] [--keep]

Works in a throwaway database next to DATABASE_URL's (`<name>_bench_webhooks`: created, migrated, dropped
afterwards unless --keep) and its own arq queue name. The receiver is uvicorn in this process: endpoint 0 answers
after --slow-s seconds, endpoint 1 always answers 500, the others at once. The events are written to the outbox as
the booking services write them (rows of `webhooks_event`, committed in batches of 100 as fast as they go; the
commit's NOTIFY wakes the workers), each carrying a booking's API JSON.
  - deliveries/s per worker: healthy deliveries over the time from the first commit to the last healthy delivery;
    beside it, one client's bare httpx POST loop to a healthy endpoint (its requests/s);
  - commit -> delivery for the healthy endpoints, p50/p99, twice: for the burst above (the backlog's length over
    the rate: a measure of throughput, not of latency) and, once the healthy endpoints have caught up, for
    --steady-s seconds of events committed one at a time at --steady-rate per second, as bookings arrive (the
    target, p99 under 1 s, is judged here: the workers keep up);
  - the slow endpoint's and the failing one's deliveries when the healthy ones were done (proof they were not
    waited for), and the healthy endpoints' p99 against the slow one's answer time.
Client, receiver, workers and PostgreSQL share the machine's cores: compare ratios. The last line is JSON.
"""

import argparse
import asyncio
import json
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import Steal, bench_database_url, log, manage, print_steal, recreate_database  # noqa: E402
from tests.support import Process, free_port  # noqa: E402

BATCH = 100
TARGET_P99_MS = 1000


def percentile_ms(values: list[float], q: float) -> float | None:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000, 1) if ordered else None


class Receiver:
    """uvicorn on a free port; records (endpoint, webhook-id) -> arrival time of its first 2xx."""

    def __init__(self, slow_s: float):
        self.port, self.slow_s = free_port(), slow_s
        self.arrived: dict[tuple[int, str], float] = {}

    async def app(self, scope, receive, send):
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        endpoint = int(scope["path"].strip("/e") or 0)
        status = 200
        if endpoint == 0:
            await asyncio.sleep(self.slow_s)
        elif endpoint == 1:
            status = 500
        if status == 200:
            headers = dict(scope["headers"])
            self.arrived.setdefault((endpoint, headers.get(b"webhook-id", b"").decode()), time.time())
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    def start(self) -> None:
        import uvicorn

        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", backlog=4096, interface="asgi3"
        )
        self.server = uvicorn.Server(config)
        threading.Thread(target=self.server.run, daemon=True).start()
        while not self.server.started:
            time.sleep(0.05)


def bare_loop(url: str, n: int) -> float:
    """One client POSTing a signed-sized JSON body back to back: requests/s."""
    import httpx

    body = json.dumps({"type": "booking.created", "timestamp": "2027-01-01T00:00:00Z", "data": {"x": "y" * 600}})
    with httpx.Client(timeout=10) as client:
        started = time.perf_counter()
        for _ in range(n):
            client.post(url, content=body, headers={"content-type": "application/json", "webhook-id": "bare"})
        return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--endpoints", type=int, default=20)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--slow-s", type=float, default=2.0)
    parser.add_argument("--steady-rate", type=float, default=5.0, help="events per second in the steady phase")
    parser.add_argument("--steady-s", type=float, default=20.0, help="seconds of the steady phase")
    parser.add_argument("--timeout-s", type=float, default=300.0, help="give up waiting after this long")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    admin, url, name = bench_database_url(os.environ.get("DATABASE_URL", ""), "webhooks")
    recreate_database(admin, name)
    env = os.environ | {
        "DATABASE_URL": url, "ARQ_QUEUE_NAME": f"parkgate:bench-webhooks:{os.getpid()}", "DEBUG": "0",
        "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "WEBHOOKS_ALLOW_PRIVATE": "1", "WEBHOOKS_TIMEOUT_S": str(args.slow_s + 3), "LOG_LEVEL": "WARNING",
    }  # fmt: skip
    manage(env, "migrate", "--no-input")
    manage(env, "seed_demo")
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    import django

    django.setup()
    from django.db import connections, transaction
    from django.utils import timezone

    from apps.webhooks.models import Delivery, Endpoint, Event
    from apps.webhooks.services import SAMPLE_BOOKING

    receiver = Receiver(args.slow_s)
    receiver.start()
    base = f"http://127.0.0.1:{receiver.port}"
    bare = bare_loop(f"{base}/e2", min(args.events, 2000))
    log(f"bare httpx POST loop: {bare:.0f}/s")
    for n in range(args.endpoints):
        Endpoint.objects.create(url=f"{base}/e{n}", events=["booking.created"], secret="whsec_" + "QUJD" * 8)
    workers = [Process(["worker"], env, f"bench-webhooks-worker-{i}").start() for i in range(args.workers)]
    try:
        time.sleep(3)  # the workers' startup (and LISTEN)
        steal = Steal()
        written, first_commit = 0, time.time()
        while written < args.events:
            size = min(BATCH, args.events - written)
            with transaction.atomic():
                now = timezone.now()
                Event.objects.bulk_create(
                    Event(type="booking.created", data=SAMPLE_BOOKING, created_at=now)  # each its own booking
                    for _ in range(size)
                )
            written += size
        log(f"{written} events committed in {time.time() - first_commit:.1f} s")
        healthy = set(range(2, args.endpoints))

        def wait_for_healthy(events: int) -> None:
            deadline = time.time() + args.timeout_s
            while time.time() < deadline:
                if sum(1 for (e, _) in list(receiver.arrived) if e in healthy) >= len(healthy) * events:
                    return
                time.sleep(0.2)

        def latencies(ids: set[str]) -> list[float]:
            created = {f"msg_{pk}": at.timestamp() for pk, at in Event.objects.values_list("id", "created_at")}
            return [t - created[m] for (e, m), t in list(receiver.arrived.items()) if e in healthy and m in ids]

        want = len(healthy) * args.events
        wait_for_healthy(args.events)
        healthy_done_at = time.time()
        slow_then = sum(1 for (e, _) in list(receiver.arrived) if e == 0)
        failing_attempts = Delivery.objects.filter(endpoint__url=f"{base}/e1").exclude(attempts=0).count()
        burst_ids = {f"msg_{pk}" for pk in Event.objects.values_list("id", flat=True)}
        lat = latencies(burst_ids)
        share = steal.share()

        # Steady: one event per commit, paced by the clock (the slow and failing endpoints still have backlogs).
        steady_n = int(args.steady_rate * args.steady_s)
        log(f"steady phase: {steady_n} events at {args.steady_rate:g}/s")
        started = time.monotonic()
        for i in range(steady_n):
            time.sleep(max(0.0, started + i / args.steady_rate - time.monotonic()))
            Event.objects.create(type="booking.created", data=SAMPLE_BOOKING, created_at=timezone.now())
        wait_for_healthy(args.events + steady_n)
        steady_ids = {f"msg_{pk}" for pk in Event.objects.values_list("id", flat=True)} - burst_ids
        steady = latencies(steady_ids)
    finally:
        for w in workers:
            w.stop()
        connections.close_all()
        if not args.keep:
            recreate_database(admin, name, drop_only=True)
    delivered = len(lat)
    span = healthy_done_at - first_commit
    result = {
        "events": args.events, "endpoints": args.endpoints, "workers": args.workers,
        "healthy_delivered": delivered, "healthy_expected": want,
        "deliveries_per_s_per_worker": round(delivered / span / args.workers, 1),
        "bare_httpx_posts_per_s": round(bare, 1),
        "burst_commit_to_delivery_p50_ms": percentile_ms(lat, 0.5),
        "burst_commit_to_delivery_p99_ms": percentile_ms(lat, 0.99),
        "steady_events_per_s": args.steady_rate, "steady_delivered": len(steady),
        "steady_expected": len(healthy) * steady_n,
        "steady_commit_to_delivery_p50_ms": percentile_ms(steady, 0.5),
        "steady_commit_to_delivery_p99_ms": percentile_ms(steady, 0.99), "target_p99_ms": TARGET_P99_MS,
        "slow_endpoint_delivered_when_healthy_done": slow_then, "slow_answer_s": args.slow_s,
        "failing_endpoint_deliveries_tried": failing_attempts, "steal": share,
    }  # fmt: skip
    print(f"healthy deliveries: {delivered}/{want} in {span:.1f} s: {result['deliveries_per_s_per_worker']}/s per "
          f"worker; bare httpx POST loop {bare:.0f}/s")  # fmt: skip
    print(f"burst: commit -> delivery (healthy): p50 {result['burst_commit_to_delivery_p50_ms']} ms, "
          f"p99 {result['burst_commit_to_delivery_p99_ms']} ms (the backlog over the rate)")  # fmt: skip
    p99 = result["steady_commit_to_delivery_p99_ms"]
    met = p99 is not None and p99 < TARGET_P99_MS and len(steady) == result["steady_expected"]
    result["target_met"] = met
    print(f"steady, {args.steady_rate:g} events/s: commit -> delivery (healthy): "
          f"p50 {result['steady_commit_to_delivery_p50_ms']} ms, p99 {p99} ms, {len(steady)}/"
          f"{result['steady_expected']} delivered -> {'met' if met else 'NOT met'}")  # fmt: skip
    print(f"slow endpoint ({args.slow_s:g} s per answer): {slow_then}/{args.events} delivered when the healthy ones "
          f"were done; failing endpoint: {failing_attempts} deliveries tried")  # fmt: skip
    print_steal(measured=share)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
