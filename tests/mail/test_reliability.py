"""Reliability from outside the process, with real processes: `serve` killed with SIGKILL in the middle of a burst,
and Redis (a private redis-server) stopped during a burst. Nothing that got a 250 is lost, nothing applies twice."""

import contextlib
import os
import signal
import smtplib
import threading
from concurrent.futures import ThreadPoolExecutor
from email.utils import make_msgid

import pytest
from django.db.models import Count

from apps.bookings.models import Booking
from apps.mail.models import InboundEmail
from tests.mail.messages import labels_text, message
from tests.mail.support import PrivateRedis
from tests.support import start_server, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

SKYPARK = "skypark@bookings.parkgate.test"


def burst_messages(prefix: str, n: int) -> list[tuple[str, str, bytes]]:
    """(agent ref, Message-ID, raw bytes) for n distinct bookings."""
    out = []
    for i in range(n):
        ref, mid = f"{prefix}-{i:04d}", make_msgid(domain="burst.example")
        msg = message(labels_text(ref=ref, plate=f"BU{i % 90 + 10:02d} RST"), message_id=mid)
        out.append((ref, mid, msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))))
    return out


def send_burst(port: int, messages, *, clients: int, on_accepted=None) -> dict[str, bool]:
    """Concurrent SMTP clients, each with its own session, sending its share; returns Message-ID -> got 250."""
    accepted: dict[str, bool] = {}
    lock = threading.Lock()

    def client(share):
        smtp = None
        for _ref, mid, raw in share:
            ok = False
            try:
                if smtp is None:
                    smtp = smtplib.SMTP("127.0.0.1", port, timeout=20)
                ok = smtp.sendmail("res@burst.example", [SKYPARK], raw) == {}
            except (smtplib.SMTPException, OSError):
                smtp = None  # the server went away or refused: this message has no 250
            with lock:
                accepted[mid] = ok
                if ok and on_accepted:
                    on_accepted(sum(accepted.values()))
        if smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, [messages[i::clients] for i in range(clients)]))
    return accepted


def wait_worker_ready(server) -> None:
    worker = server.processes[1]
    wait_for(lambda: "Starting worker" in worker.log(), timeout=30, message="the arq worker running")


def assert_each_applied_exactly_once(prefix: str, messages, timeout: float) -> None:
    refs = {ref for ref, _, _ in messages}
    wait_for(
        lambda: Booking.objects.filter(agent_ref__startswith=prefix + "-").count() >= len(refs),
        timeout=timeout,
        interval=0.5,
        message=f"{len(refs)} bookings",
    )
    booked = Booking.objects.filter(agent_ref__startswith=prefix + "-").values("agent_ref").annotate(n=Count("id"))
    assert {row["agent_ref"] for row in booked} == refs and all(row["n"] == 1 for row in booked)
    originals = (
        InboundEmail.objects.filter(subject="Booking")
        .exclude(status="duplicate")
        .values("message_id")
        .annotate(n=Count("id"))
    )
    counts = {row["message_id"]: row["n"] for row in originals}
    assert all(counts.get(f"<{mid.strip('<>')}>", 0) == 1 for _, mid, _ in messages)
    wait_for(
        lambda: not InboundEmail.objects.filter(status="received").exists(),
        timeout=timeout,
        message="every message processed",
    )


def test_kill_9_mid_burst_loses_nothing_that_got_250_and_resends_do_not_duplicate(server_env, demo_world):
    messages = burst_messages("KILL", 200)
    server = start_server(server_env, name="mail-kill")
    replacement = None
    try:
        wait_worker_ready(server)
        killed = threading.Event()

        def kill_when(accepted_so_far: int) -> None:
            if accepted_so_far >= 70 and not killed.is_set():
                killed.set()
                os.kill(server.serve.proc.pid, signal.SIGKILL)

        accepted = send_burst(server.smtp_port, messages, clients=8, on_accepted=kill_when)
        assert killed.is_set()
        got_250 = [mid for mid, ok in accepted.items() if ok]
        assert 70 <= len(got_250) < 200
        stored = set(InboundEmail.objects.values_list("message_id", flat=True))
        assert all(mid in stored for mid in got_250), "a message that got 250 was lost"

        replacement = start_server(server_env, name="mail-kill-2", worker=False)  # the first worker still runs
        retry = [m for m in messages if not accepted[m[1]]]
        resent = send_burst(replacement.smtp_port, retry, clients=4)
        assert all(resent.values())
        assert_each_applied_exactly_once("KILL", messages, timeout=60)
    finally:
        server.stop()
        if replacement:
            replacement.stop()


def test_redis_stopped_during_a_burst_all_accepted_and_processed_once_it_is_back(server_env, demo_world):
    redis = PrivateRedis().start()
    env = server_env | {"REDIS_URL": redis.url}
    server = start_server(env, name="mail-redis")
    try:
        wait_worker_ready(server)  # the plain `manage.py worker`: it must start itself again when Redis is back
        messages = burst_messages("REDIS", 100)
        stopped = threading.Event()

        def stop_redis_when(accepted_so_far: int) -> None:
            if accepted_so_far >= 30 and not stopped.is_set():
                stopped.set()
                threading.Thread(target=redis.stop).start()

        accepted = send_burst(server.smtp_port, messages, clients=6, on_accepted=stop_redis_when)
        assert stopped.is_set() and all(accepted.values()), "the database is up: every message gets its 250"
        redis.start()  # same port
        assert_each_applied_exactly_once("REDIS", messages, timeout=60)
    finally:
        server.stop()
        redis.stop()
