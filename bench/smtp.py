"""Benchmark: agents' booking mail over SMTP into a real `serve` (+ `worker`) on PostgreSQL + Redis, beside a bare
aiosmtpd server that only answers 250, driven by the same concurrent SMTP clients in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/parkgate REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/smtp.py [--clients 16] [--messages 1500] [--rate 20] [--seconds 15] [--workers 1]
            [--keep]

Works in a throwaway database next to DATABASE_URL's (`<name>_bench_smtp`: created, migrated, seeded with the demo
world, dropped afterwards unless --keep) and its own arq queue name. Starts `manage.py serve` and --workers
`manage.py worker` processes, and the bare server (`bench/smtp.py --bare-server PORT`, aiosmtpd with a handler
returning 250).
Every message is a 3 KB `labels` booking (a new agent reference each time, arrivals spread over 200 days).
  - saturation: --clients sessions each send messages back to back until --messages are accepted: messages/s and the
    reply latency to the end of DATA (p50/p99), for the bare server and for Parkgate (which commits each message
    to PostgreSQL before its 250 and enqueues its job; the worker applies them meanwhile);
  - steady: --rate messages/s for --seconds over 8 sessions: reply p50/p99, and the time from each 250 to its
    booking existing in the database (polled every 5 ms), p50/p99.
Client and servers share the machine's cores, so compare ratios, not absolute figures. The last line is JSON.
"""

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import Steal, bench_database_url, log, manage, print_steal, recreate_database  # noqa: E402  (after the path is set)
from tests.support import Process, free_port, start_server  # noqa: E402  (after the path is set)

MAILBOX = "skypark@bookings.parkgate.test"
ROUNDS = 3
TARGETS = {"ratio_min": 0.50, "steady_p99_ms_max": 100.0, "to_booking_p50_ms_max": 500.0}
FOOTER = (
    "This booking was made through SkyPark Agents. The customer has paid in full. Please do not reply to this "
    "automatically generated message: replies are not monitored. Terms and conditions apply; see our website. "
)


# --- The bare server ---------------------------------------------------------------------------------------------


def run_bare_server(port: int) -> None:
    """aiosmtpd with the same protocol options as Parkgate's, whose DATA handler only answers 250."""
    from aiosmtpd.smtp import SMTP

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            return "250 2.0.0 OK"

    async def main():
        loop = asyncio.get_running_loop()
        handler = Handler()
        server = await loop.create_server(
            lambda: SMTP(handler, hostname="bare", data_size_limit=10 * 1024 * 1024, enable_SMTPUTF8=True),
            "127.0.0.1",
            port,
        )
        print("ready", flush=True)
        await server.serve_forever()

    asyncio.run(main())


# --- Messages ----------------------------------------------------------------------------------------------------


def booking_message(run: str, n: int) -> tuple[str, bytes]:
    """(agent reference, raw message of ~3 KB with CRLF line ends, dot-stuffed and terminated for DATA)."""
    ref = f"BN{run}-{n:06d}"
    arrival = date(2027, 1, 1) + timedelta(days=n % 200)
    body = (
        f"Booking Status: New\nBooking Reference: {ref}\nCar Park: LHR-T5\nCustomer Name: Bench Customer {n}\n"
        f"Email: bench{n}@example.com\nMobile: 07700 900{n % 1000:03d}\n"
        f"Drop Off Date: {arrival:%d/%m/%Y}\nDrop Off Time: 06:30\n"
        f"Return Date: {arrival + timedelta(days=4):%d/%m/%Y}\nReturn Time: 21:45\n"
        f"Outbound Flight: BA0117\nReturn Flight: BA0118\nRegistration: BN{n % 100:02d} CHK\n"
        "Make: Ford\nModel: Focus\nColour: Blue\nTotal Price: £54.99\nCommission: £8.25\n\n"
    )
    head = (
        f"From: SkyPark Reservations <res@skypark.example>\nTo: {MAILBOX}\nSubject: Booking Confirmation {ref}\n"
        f"Message-ID: <{ref}@skypark.example>\nDate: Sat, 21 Nov 2026 10:00:00 +0000\nMIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
    )
    text = head + body
    while len(text.encode()) < 3000:
        text += FOOTER[: 3000 - len(text.encode())] + "\n"
    raw = text.replace("\n", "\r\n").encode()
    stuffed = b"\r\n".join(b"." + line if line.startswith(b".") else line for line in raw.split(b"\r\n"))
    return ref, stuffed + b".\r\n"


# --- A minimal asyncio SMTP client (no pipelining, one message at a time per session) ----------------------------


class Session:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> "Session":
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        session = cls(reader, writer)
        await session.expect(220)
        await session.command(b"EHLO bench.example", 250)
        return session

    async def reply(self) -> tuple[int, bytes]:
        while True:
            line = await self.reader.readline()
            if not line:
                raise ConnectionError("server closed the session")
            if line[3:4] != b"-":
                return int(line[:3]), line

    async def expect(self, code: int) -> bytes:
        got, line = await self.reply()
        if got != code:
            raise RuntimeError(f"expected {code}, got {line!r}")
        return line

    async def command(self, line: bytes, code: int) -> bytes:
        self.writer.write(line + b"\r\n")
        return await self.expect(code)

    async def send(self, data: bytes) -> float:
        """One transaction; returns the latency of the reply to the end of DATA (seconds)."""
        await self.command(b"MAIL FROM:<res@skypark.example>", 250)
        await self.command(b"RCPT TO:<" + MAILBOX.encode() + b">", 250)
        await self.command(b"DATA", 354)
        self.writer.write(data)
        started = time.perf_counter()
        await self.expect(250)
        return time.perf_counter() - started

    async def close(self) -> None:
        self.writer.write(b"QUIT\r\n")
        self.writer.close()


def median_run(runs: list[dict]) -> dict:
    """The round with the median throughput (its latencies and CPU with it)."""
    return sorted(runs, key=lambda run: run["msgs_per_s"])[len(runs) // 2] | {
        "rounds_msgs_per_s": [run["msgs_per_s"] for run in runs]
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


async def saturate(port: int, messages: list[bytes], clients: int) -> dict:
    queue = list(reversed(messages))
    latencies: list[float] = []

    async def client():
        session = await Session.open(port)
        while queue:
            latencies.append(await session.send(queue.pop()))
        await session.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    return {
        "messages": len(latencies),
        "msgs_per_s": round(len(latencies) / elapsed, 1),
        "reply_p50_ms": round(pct(latencies, 0.5), 2),
        "reply_p99_ms": round(pct(latencies, 0.99), 2),
    }


async def steady(port: int, messages: list[tuple[str, bytes]], rate: float, db_url: str) -> dict:
    """Open loop at `rate` msgs/s; measures reply latency and 250 -> booking (polling the database)."""
    import psycopg

    sessions: asyncio.Queue[Session] = asyncio.Queue()
    for _ in range(8):
        sessions.put_nowait(await Session.open(port))
    latencies: list[float] = []
    accepted_at: dict[str, float] = {}
    booked_at: dict[str, float] = {}
    done = asyncio.Event()

    async def poll():
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            while not done.is_set() or len(booked_at) < len(accepted_at):
                pending = [ref for ref in accepted_at if ref not in booked_at]
                if pending:
                    cursor = await conn.execute(
                        "SELECT agent_ref FROM bookings_booking WHERE agent_ref = ANY(%s)", (pending,)
                    )
                    now = time.perf_counter()
                    for (ref,) in await cursor.fetchall():
                        booked_at.setdefault(ref, now)
                if done.is_set() and time.perf_counter() - done_at > 15:
                    break
                await asyncio.sleep(0.005)

    async def send(ref: str, data: bytes):
        session = await sessions.get()
        try:
            latencies.append(await session.send(data))
            accepted_at[ref] = time.perf_counter()
        finally:
            sessions.put_nowait(session)

    poller = asyncio.create_task(poll())
    started = time.perf_counter()
    tasks = []
    for i, (ref, data) in enumerate(messages):
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(ref, data)))
    await asyncio.gather(*tasks)
    done_at = time.perf_counter()
    done.set()
    await poller
    while not sessions.empty():
        await (sessions.get_nowait()).close()
    to_booking = [booked_at[ref] - t for ref, t in accepted_at.items() if ref in booked_at]
    return {
        "messages": len(latencies),
        "rate": rate,
        "reply_p50_ms": round(pct(latencies, 0.5), 2),
        "reply_p99_ms": round(pct(latencies, 0.99), 2),
        "to_booking_p50_ms": round(pct(to_booking, 0.5), 1),
        "to_booking_p99_ms": round(pct(to_booking, 0.99), 1),
        "not_booked": len(accepted_at) - len(to_booking),
    }


# --- Setup -------------------------------------------------------------------------------------------------------


def start_bare_server() -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--bare-server", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
        text=True,
    )
    if proc.stdout.readline().strip() != "ready":
        sys.exit("the bare aiosmtpd server did not start")
    return proc, port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--messages", type=int, default=1500, help="per server, over 3 interleaved rounds")
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=1, help="worker processes applying the mail")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--bare-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        run_bare_server(args.bare_server)
        return
    if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
        sys.exit("set DATABASE_URL (PostgreSQL) and REDIS_URL (see the docstring)")
    admin_url, db_url, db_name = bench_database_url(os.environ["DATABASE_URL"], "smtp")
    env = dict(os.environ) | {
        "DATABASE_URL": db_url,
        "ARQ_QUEUE_NAME": f"parkgate:bench-smtp:{os.getpid()}",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "DEBUG": "0",
        "PARKGATE_HTTPS": "0",
        "LOG_LEVEL": "INFO",  # the production default; `serve` says "SMTP listening" at INFO
    }
    log(f"database {db_name}: create, migrate, seed the demo world")
    recreate_database(admin_url, db_name)
    manage(env, "migrate", "--no-input")
    manage(env, "seed_demo")
    bare, bare_port = start_bare_server()
    server = None
    run = f"{random.randrange(36**4):04x}"
    try:
        server = start_server(env, name="bench-smtp", worker=False)
        steal = Steal()
        results = asyncio.run(measure(args, run, bare_port, bare.pid, server, env, db_url))
        results["steal"] = steal.share()
    finally:
        if server is not None:
            server.stop()
        bare.terminate()
        bare.wait()
        if not args.keep:
            recreate_database(admin_url, db_name, drop_only=True)
    report(results)


async def measure(args, run: str, bare_port: int, bare_pid: int, server, env: dict[str, str], db_url: str) -> dict:
    total, steady_n = args.messages, int(args.rate * args.seconds)
    batch = [booking_message(run, n) for n in range(2 * total + 200 + steady_n)]
    log(f"saturation: {args.clients} clients, {total} messages of {len(batch[0][1])} bytes per server, {ROUNDS} rounds")
    await saturate(bare_port, [m for _, m in batch[:200]], args.clients)  # warm up
    await saturate(server.smtp_port, [m for _, m in batch[total : total + 200]], args.clients)
    bare_runs, parkgate_runs = [], []
    per_round = total // ROUNDS
    for r in range(ROUNDS):  # interleaved, so that a noisy neighbour on the machine hits both alike
        cpu_before = cpu_seconds(bare_pid)
        bare_runs.append(await saturate(bare_port, [m for _, m in batch[:per_round]], args.clients))
        bare_runs[-1]["server_cpu_ms_per_msg"] = round((cpu_seconds(bare_pid) - cpu_before) / per_round * 1000, 2)
        chunk = batch[total + 200 + r * per_round : total + 200 + (r + 1) * per_round]
        cpu_before = cpu_seconds(server.serve.proc.pid)
        parkgate_runs.append(await saturate(server.smtp_port, [m for _, m in chunk], args.clients))
        cpu_used = cpu_seconds(server.serve.proc.pid) - cpu_before
        parkgate_runs[-1]["server_cpu_ms_per_msg"] = round(cpu_used / per_round * 1000, 2)
        log(f"  round {r + 1}: bare {bare_runs[-1]['msgs_per_s']}, parkgate {parkgate_runs[-1]['msgs_per_s']} msg/s")
    bare, parkgate = median_run(bare_runs), median_run(parkgate_runs)
    log(f"starting {args.workers} worker(s); they apply the saturation backlog first")
    for n in range(args.workers):
        server.processes.append(Process(["worker"], env, f"bench-smtp-worker-{n}").start())
    drained = await drain(db_url, env["ARQ_QUEUE_NAME"])
    log(f"backlog of {drained['messages']} applied at {drained['msgs_per_s']} msg/s; steady: {args.rate} msgs/s")
    steady_bare = await steady_reply_only(bare_port, [m for _, m in batch[:steady_n]], args.rate)
    steady_pg = await steady(server.smtp_port, batch[2 * total + 200 :], args.rate, db_url)
    return {
        "bare": bare,
        "parkgate": parkgate,
        "workers": args.workers,
        "worker_backlog": drained,
        "steady_bare": steady_bare,
        "steady": steady_pg,
    }


async def drain(db_url: str, queue_name: str) -> dict:
    """Wait until no message is left `received` and no job is queued; the worker's throughput on the way."""
    import psycopg
    from redis.asyncio import Redis

    redis = Redis.from_url(os.environ["REDIS_URL"])

    async def queued_jobs() -> int:
        """Jobs still queued (the bookings' own follow-up jobs too), so that the steady phase starts idle."""
        return await redis.zcard(queue_name)

    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:

        async def waiting() -> int:
            cursor = await conn.execute("SELECT count(*) FROM mail_inboundemail WHERE status = 'received'")
            return (await cursor.fetchone())[0]

        backlog, started = await waiting(), None
        while (left := await waiting()) > 0 or await queued_jobs() > 0:
            if started is None and left < backlog:
                started, backlog = time.perf_counter(), left
            await asyncio.sleep(0.2)
        elapsed = time.perf_counter() - (started or time.perf_counter())
        await redis.aclose()
        return {"messages": backlog, "msgs_per_s": round(backlog / elapsed, 1) if elapsed else None}


async def steady_reply_only(port: int, messages: list[bytes], rate: float) -> dict:
    session = await Session.open(port)
    latencies = []
    started = time.perf_counter()
    for i, data in enumerate(messages):
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        latencies.append(await session.send(data))
    await session.close()
    return {"reply_p50_ms": round(pct(latencies, 0.5), 2), "reply_p99_ms": round(pct(latencies, 0.99), 2)}


def report(r: dict) -> None:
    ratio = r["parkgate"]["msgs_per_s"] / r["bare"]["msgs_per_s"]
    s = r["steady"]
    print(
        f"saturation  bare aiosmtpd : {r['bare']['msgs_per_s']:8.1f} msg/s  "
        f"reply p50 {r['bare']['reply_p50_ms']:6.2f} ms  p99 {r['bare']['reply_p99_ms']:6.2f} ms  "
        f"server CPU {r['bare']['server_cpu_ms_per_msg']:.2f} ms/msg"
    )
    print(
        f"saturation  parkgate      : {r['parkgate']['msgs_per_s']:8.1f} msg/s  "
        f"reply p50 {r['parkgate']['reply_p50_ms']:6.2f} ms  p99 {r['parkgate']['reply_p99_ms']:6.2f} ms  "
        f"server CPU {r['parkgate']['server_cpu_ms_per_msg']:.2f} ms/msg"
    )
    print(
        f"ratio parkgate/bare        : {ratio:.0%} (target >= {TARGETS['ratio_min']:.0%}); rounds: "
        f"bare {r['bare']['rounds_msgs_per_s']}, parkgate {r['parkgate']['rounds_msgs_per_s']}"
    )
    print(f"workers ({r['workers']}): {r['worker_backlog']['msgs_per_s']} msg/s applied (parse + booking)")
    print(
        f"steady {s['rate']:.0f} msg/s  bare       : reply p50 {r['steady_bare']['reply_p50_ms']:6.2f} ms  "
        f"p99 {r['steady_bare']['reply_p99_ms']:6.2f} ms"
    )
    print(
        f"steady {s['rate']:.0f} msg/s  parkgate   : reply p50 {s['reply_p50_ms']:6.2f} ms  "
        f"p99 {s['reply_p99_ms']:6.2f} ms (target p99 < {TARGETS['steady_p99_ms_max']:.0f} ms)"
    )
    print(
        f"250 -> booking exists     : p50 {s['to_booking_p50_ms']:6.1f} ms  p99 {s['to_booking_p99_ms']:6.1f} ms "
        f"(target p50 < {TARGETS['to_booking_p50_ms_max']:.0f} ms); not booked: {s['not_booked']}"
    )
    ok = (
        ratio >= TARGETS["ratio_min"]
        and s["reply_p99_ms"] < TARGETS["steady_p99_ms_max"]
        and s["to_booking_p50_ms"] < TARGETS["to_booking_p50_ms_max"]
        and s["not_booked"] == 0
    )
    print_steal(measured=r["steal"])
    print(json.dumps(r | {"ratio": round(ratio, 3), "targets": TARGETS, "targets_met": ok}))


if __name__ == "__main__":
    main()
