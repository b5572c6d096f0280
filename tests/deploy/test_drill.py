"""The production shape under failure: nginx (deploy/nginx/parkgate.conf, TLS) in front of three `serve` and two
workers on the test database and a Redis of the drill's own. 60 lane controllers and 50 staff dashboards connect
through nginx, agents send booking mail to the processes' SMTP ports, and meanwhile: a rolling restart (SIGTERM each
`serve`, start it again), kill -9 of a `serve`, kill -9 of a worker, a Redis restart. Every plate read gets its one
decision, every SMTP 250 becomes exactly one booking, dashboards converge. The figures are printed (-s)."""

import asyncio
import statistics
import tempfile
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.db import connections
from django.utils import timezone

from apps.access.models import Permit, PlateRead, Visit
from apps.access.services import device_create
from apps.bookings.models import Booking
from apps.carparks.models import CarPark
from apps.core.plates import lookalike_key
from tests.deploy import stack
from tests.deploy.clients import Dashboard, Lane, send_booking_mail

pytestmark = pytest.mark.django_db(transaction=True)

LANES, DASHBOARDS, READ_EVERY_S, MAILERS = 60, 50, 2.0, 2


def _session_cookie() -> str:
    """A staff member's session, as the login form would leave it (a supervisor at LHR-T5)."""
    from apps.staff.services import staff_member_set

    user = staff_member_set(username="drill", password="drill-Pass-9431", carpark_codes=["LHR-T5"], role="supervisor")
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = get_user_model().objects.get(pk=user.pk).get_session_auth_hash()
    session.create()
    return f"sessionid={session.session_key}"


def _devices(nginx: stack.Nginx, carpark: CarPark) -> list[tuple[str, str]]:
    """LANES controllers, each with a permit plate of its own: its reads open visits and close them (occupancy
    moves); enrolled through nginx as a controller would."""
    now = timezone.now()
    out = []
    with httpx.Client(verify=False, base_url=nginx.https, timeout=30) as client:  # noqa: S501 (self-signed)
        for n in range(LANES):
            plate = f"DRL{n:03d}"
            Permit.objects.create(
                carpark=carpark, holder=f"Drill {n}", plate_raw=plate, plate=plate, lookalike_key=lookalike_key(plate),
                valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=1),
            )  # fmt: skip
            _, issued = device_create(carpark_code="LHR-T5", lane_codes=["N-IN", "N-OUT"], name=f"drill-{n}")
            answer = client.post("/api/device/v1/enrol", json={"code": issued.code, "serial": f"D{n}", "model": "m"})
            assert answer.status_code == 201, answer.text
            out.append((answer.json()["token"], plate))
    return out


class Mailers:
    """Agents' MTAs in threads: a booking mail each every ~0.3 s to the processes' SMTP ports, until stopped."""

    def __init__(self, ports: list[int]):
        self.ports, self.accepted, self.failed, self.stop = ports, [], 0, threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(MAILERS)]
        self.lock = threading.Lock()

    def _run(self, i: int) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            ref = f"DRILL-{i}-{n:04d}"
            if send_booking_mail(self.ports, ref, i * 10000 + n):
                with self.lock:
                    self.accepted.append(ref)
            else:
                self.failed += 1
            time.sleep(0.3)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(30)


def _in_flight_jobs(log: str) -> int:
    """Jobs the worker's log shows started (arq's `→ id:name`) and not finished (`← id:name`)."""
    started = {line.split("→ ")[1].split(":")[0] for line in log.splitlines() if "→ " in line}
    finished = {line.split("← ")[1].split(":")[0] for line in log.splitlines() if "← " in line}
    return len(started - finished)


def test_rolling_restart_kills_and_a_redis_restart_lose_nothing(server_env, demo_world):
    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="parkgate-drill-") as tmp:
        redis = stack.Redis().start()
        env = server_env | {
            "REDIS_URL": redis.url,
            "PARKGATE_HTTPS": "1",
            "TRUSTED_PROXIES": "127.0.0.1/32",
            "DB_POOL_MAX": "6",
            "DECISION_THREADS": "2",
        }
        serves = [stack.Serve(env, f"drill-serve-{i}") for i in range(3)]
        workers = [stack.worker(env, f"drill-worker-{i}") for i in range(2)]
        nginx = stack.Nginx([s.http_port for s in serves], Path(tmp))
        try:
            for s in serves:
                s.start()
            for s in serves:
                s.wait_ready()
            nginx.start()
            _check_the_proxy(nginx)
            carpark = CarPark.objects.get(code="LHR-T5")
            devices = _devices(nginx, carpark)
            cookie = _session_cookie()
            asyncio.run(_drill(nginx, serves, workers, redis, env, devices, cookie, carpark.pk, figures))
        finally:
            nginx.stop()
            for s in serves:
                if s.process and s.process.proc.poll() is None:
                    s.stop()
            for w in workers:
                w.stop()
            redis.stop()
    print("\ndeploy drill:", "; ".join(f"{k}={v}" for k, v in figures.items()))
    for phase in ("dashboards_converged_after_restart_s", "dashboards_converged_after_redis_s"):
        assert figures[phase] <= 2.0, f"{phase}: {figures[phase]}"


def _check_the_proxy(nginx: stack.Nginx) -> None:
    """TLS ends at nginx and X-Forwarded-Proto reaches Parkgate (PARKGATE_HTTPS would otherwise redirect forever);
    plain HTTP is sent to HTTPS."""
    with httpx.Client(verify=False, timeout=10) as client:  # noqa: S501 (self-signed)
        assert client.get(f"{nginx.https}/healthz").status_code == 200
        assert client.get(f"{nginx.https}/api/v1/carparks").status_code == 401  # the API answered, no redirect
        plain = client.get(f"http://127.0.0.1:{nginx.http_port}/dashboard/")
        assert plain.status_code == 308 and plain.headers["location"].startswith("https://")


async def _drill(nginx, serves, workers, redis, env, devices, cookie, carpark_id, figures) -> None:
    stop, started = asyncio.Event(), time.monotonic()
    lanes = [
        Lane(f"{nginx.wss}/ws/device/", tok, f"lane{n}", plate, READ_EVERY_S) for n, (tok, plate) in enumerate(devices)
    ]
    origin = f"https://127.0.0.1:{nginx.https_port}"
    dashboards = [Dashboard(f"{nginx.wss}/ws/dashboard/", cookie, origin, carpark_id) for _ in range(DASHBOARDS)]
    tasks = [asyncio.create_task(c.run(stop)) for c in [*lanes, *dashboards]]
    with Mailers([s.smtp_port for s in serves]) as mailers:
        await asyncio.sleep(3)
        # 1. Rolling restart: SIGTERM each serve in turn, start it again, wait until it answers.
        for s in serves:
            assert await asyncio.to_thread(s.stop) == 0
            s.start()
            await asyncio.to_thread(s.wait_ready)
        figures["rolling_restart_s"] = round(time.monotonic() - started - 3, 1)
        figures["dashboards_converged_after_restart_s"] = await _converged(lanes, dashboards, carpark_id)
        # 2. kill -9 of one serve under load; it comes back.
        stack.kill9(serves[1].process)
        await asyncio.sleep(1)
        serves[1].start()
        await asyncio.to_thread(serves[1].wait_ready)
        # 3. kill -9 of a worker mid-job; another takes its place.
        await asyncio.sleep(1)
        figures["jobs_in_flight_at_worker_kill"] = _in_flight_jobs(workers[0].log())
        stack.kill9(workers[0])
        workers[0] = stack.worker(env, "drill-worker-2")
        # 4. Redis restarted under load.
        await asyncio.sleep(1)
        await asyncio.to_thread(redis.stop)
        await asyncio.sleep(2)
        await asyncio.to_thread(redis.start)
        await asyncio.sleep(2)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks[:LANES]), 60)
    figures["dashboards_converged_after_redis_s"] = await _converged(lanes, dashboards, carpark_id)
    for task in tasks[LANES:]:
        await task
    figures["load_s"] = round(time.monotonic() - started, 1)
    await asyncio.to_thread(_closing, lambda: _check_reads(lanes, figures))
    await asyncio.to_thread(_closing, lambda: _check_bookings(mailers, figures))
    figures["dashboard_reconnects"] = sum(d.reconnects for d in dashboards)
    figures["dashboard_reconnect_reasons"] = dict(sum((d.reasons for d in dashboards), Counter()).most_common(3))


def _closing(work):
    """`work()` on a thread of asyncio's pool, closing the Django connection it opened there."""
    try:
        return work()
    finally:
        connections.close_all()


async def _converged(lanes, dashboards, carpark_id) -> float:
    """Pause the reads, wait for the last decisions, then time until every dashboard shows the true occupancy."""
    for lane in lanes:
        lane.paused = True
    deadline = time.monotonic() + 30
    while any(lane.pending for lane in lanes) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    settled = time.monotonic()
    truth = await asyncio.to_thread(
        _closing, lambda: Visit.objects.filter(carpark_id=carpark_id, exited_at__isnull=True).count()
    )
    while any(d.occupancy != truth for d in dashboards):
        now = time.monotonic()
        seen = [(d.occupancy, d.reconnects, round(now - d.last_frame_at, 1), d.last_error) for d in dashboards]
        assert now - settled < 10, f"dashboards (occupancy, reconnects, s since a frame, why) {seen} != {truth}"
        await asyncio.sleep(0.05)
    took = round(time.monotonic() - settled, 2)
    for lane in lanes:
        lane.paused = False
    return took


def _check_reads(lanes, figures) -> None:
    sent = sum(lane.sent for lane in lanes)
    decided = {(lane.name, r): d for lane in lanes for r, d in lane.decisions.items()}
    lost = sum(len(lane.pending) for lane in lanes)
    replayed = sum(len(d) - 1 for d in decided.values())
    disagreeing = sum(1 for d in decided.values() if len({x.get("action") for x in d}) > 1)
    rows = PlateRead.objects.filter(device__name__startswith="drill-").count()
    outages = [o for lane in lanes for o in lane.outages]
    figures.update(
        reads=sent, decisions=len(decided), decisions_replayed_for_resent_reads=replayed, lost=lost,
        duplicates_stored=rows - len(decided), disagreeing=disagreeing, lane_reconnects=len(outages),
        reconnect_median_s=round(statistics.median(outages), 2) if outages else 0,
        reconnect_max_s=round(max(outages), 2) if outages else 0,
    )  # fmt: skip
    assert lost == 0 and len(decided) == sent and rows == sent and disagreeing == 0


def _check_bookings(mailers, figures) -> None:
    accepted = mailers.accepted
    deadline = time.monotonic() + 40  # the mail sweep re-finds what a killed worker or the lost queue dropped
    while time.monotonic() < deadline:
        made = Booking.objects.filter(agent_ref__in=accepted).count()
        if made >= len(accepted):
            break
        time.sleep(0.2)
    figures.update(smtp_250=len(accepted), smtp_not_accepted=mailers.failed, bookings=made)
    per_ref = Booking.objects.filter(agent_ref__startswith="DRILL-").values_list("agent_ref", flat=True)
    assert sorted(per_ref) == sorted(set(per_ref)) and set(accepted) <= set(per_ref)
