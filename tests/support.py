"""Running Parkgate's real processes for end-to-end tests, and small helpers that talk to them from outside."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


def _port_block() -> range:
    """This test process's own ports: below the kernel's ephemeral range, one block per xdist worker.

    A port the kernel hands out for bind(0) comes from the ephemeral range, the same one every outgoing connection
    takes its source port from: between free_port() returning and a server binding it, a client connection (to
    PostgreSQL, Redis, another test's server) could take it, and CI once saw `serve` fail with "address already in
    use". Nothing takes a port below that range unless asked to, and each worker asks only in its own block.
    """
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral_low = int(f.read().split()[0])
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    size = (ephemeral_low - _LOWEST_PORT) // workers
    return range(_LOWEST_PORT + worker * size, _LOWEST_PORT + (worker + 1) * size)


_LOWEST_PORT = 10_000
_handed_out = 0


def free_port() -> int:
    """A port nothing listens on, not handed out before by this process (until its block wraps round)."""
    global _handed_out
    block = _port_block()
    for _ in block:
        port = block[_handed_out % len(block)]
        _handed_out += 1
        with socket.socket() as s, contextlib.suppress(OSError):
            s.bind(("127.0.0.1", port))
            return port
    raise RuntimeError(f"every port in {block} is taken")


def database_url_for(db: dict) -> str:
    """A DATABASE_URL for the database Django is connected to in this test run (the test database)."""
    user, host = db.get("USER") or "postgres", db.get("HOST") or "127.0.0.1"
    if host.startswith("/"):  # a Unix socket's directory (the embedded cluster)
        return f"postgres://{user}@/{db['NAME']}?host={host}"
    return f"postgres://{user}@{host}:{db.get('PORT') or 5432}/{db['NAME']}"


@dataclass
class Process:
    """A manage.py command run as a separate OS process, its output kept in test-artifacts/."""

    args: list[str]
    env: dict[str, str]
    name: str
    proc: subprocess.Popen | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.log_path = ARTIFACTS / f"{self.name}.log"

    def start(self) -> "Process":
        self._log = open(self.log_path, "ab")  # noqa: SIM115  (closed in stop)
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), *self.args],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        """Stop it (SIGTERM by default) and return its exit status; SIGKILL if it does not stop in time."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


@dataclass
class Server:
    """A running `manage.py serve` (and, with Redis, a `manage.py worker`)."""

    http_port: int
    smtp_port: int
    processes: list[Process]

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.http_port}"

    @property
    def serve(self) -> Process:
        return self.processes[0]

    def stop(self, sig: int = signal.SIGTERM) -> list[int]:
        return [p.stop(sig) for p in self.processes]


# A deadline, not a timing: a fresh `serve` imports Django and binds its ports in ~2 s here, but on a starved VM (40%
# CPU steal, with another test's worker busy) one took over 30 s and failed a reliability test that had passed.
READY_TIMEOUT_S = 120


def start_server(
    env: dict[str, str], name: str = "serve", worker: bool = True, ready_timeout: float = READY_TIMEOUT_S
) -> Server:
    http_port, smtp_port = free_port(), free_port()
    serve = Process(["serve", "--http", f"127.0.0.1:{http_port}", "--smtp", f"127.0.0.1:{smtp_port}"], env, name)
    processes = [serve.start()]
    if worker and env.get("REDIS_URL"):
        processes.append(Process(["worker"], env, f"{name}-worker").start())
    server = Server(http_port, smtp_port, processes)
    wait_ready(server, ready_timeout)
    return server


def wait_ready(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in server.processes:
            if p.proc.poll() is not None:
                raise RuntimeError(f"{p.name} exited with {p.proc.returncode}:\n{p.log()}")
        with contextlib.suppress(httpx.HTTPError):
            if (
                httpx.get(f"{server.http}/healthz", timeout=1).status_code == 200
                and "SMTP listening" in server.serve.log()
            ):
                return
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"serve not ready after {timeout}s:\n{server.serve.log()}")


def wait_for(predicate, timeout: float = 10, interval: float = 0.05, message: str = "condition"):
    """Poll `predicate` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)
