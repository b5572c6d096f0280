"""What every benchmark script shares: a throwaway PostgreSQL database beside DATABASE_URL, manage.py, logging.

Figures go to stdout (the last line one JSON object); progress goes to stderr through `log`.
"""

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent


class Steal:
    """The share of this machine's CPU time that its hypervisor gave to other guests (/proc/stat `steal`) from its
    start to `share()`. A phase measured under much of it measured a busy host as much as the project: the figures
    come out with it so that a reader can tell. None where the kernel does not say (not Linux)."""

    def __init__(self) -> None:
        self.start = _cpu_times()

    def share(self) -> float | None:
        end = _cpu_times()
        if self.start is None or end is None:
            return None
        steal, total = (b - a for a, b in zip(self.start, end, strict=True))
        return round(steal / total, 3) if total else 0.0


def percent(share: float | None) -> str:
    return "unknown" if share is None else f"{share:.1%}"


def print_steal(**phases: float | None) -> None:
    """The figures' line of the host steal each phase ran under (`Steal.share()`)."""
    shares = ", ".join(f"{phase} {percent(share)}" for phase, share in phases.items())
    print(f"host steal (CPU time the hypervisor gave to other guests; over a few % disturbs the figures): {shares}")


def _cpu_times() -> tuple[int, int] | None:
    """(steal, total) ticks of all CPUs so far: user nice system idle iowait irq softirq steal (guest time is already
    counted in user)."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    return (fields[7], sum(fields)) if len(fields) == 8 else None


class CpuSeconds:
    """CPU seconds (user + system) used so far by each of the bench's own processes by name, by every `postgres`
    process on the machine together, and by this client: where a request's cost goes, which a ratio of requests/s
    does not say. Linux only (/proc); empty elsewhere."""

    TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids

    def now(self) -> dict[str, float]:
        used = {name: self._of(pid) for name, pid in self.pids.items()}
        # A backend that ends between the listing and the read counts for nothing (None), not as an error.
        used["postgres"] = sum(filter(None, (self._of(int(pid)) for pid in _pids_named("postgres"))))
        used["client"] = time.process_time()
        return {name: seconds for name, seconds in used.items() if seconds is not None}

    @classmethod
    def _of(cls, pid: int) -> float | None:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / cls.TICK  # utime, stime


def _pids_named(name: str) -> list[str]:
    pids = []
    for pid in os.listdir("/proc") if os.path.isdir("/proc") else []:
        try:
            with open(f"/proc/{pid}/comm") as comm:
                if comm.read().strip() == name:
                    pids.append(pid)
        except OSError:
            continue
    return pids


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def bench_database_url(url: str, bench: str) -> tuple[str, str, str]:
    """(admin URL, bench URL, bench database name) for a database `<name>_bench_<bench>` beside `url`."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        sys.exit(f"bench/{bench}.py needs DATABASE_URL to point at PostgreSQL")
    name = (parts.path.lstrip("/") or "parkgate") + f"_bench_{bench}"
    return urlunsplit(parts._replace(path="/postgres")), urlunsplit(parts._replace(path="/" + name)), name


def recreate_database(admin_url: str, name: str, drop_only: bool = False) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{name}"')


def manage(env: dict[str, str], *args: str) -> str:
    """Run a manage.py command for the bench; stop the bench with its output if it fails."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if out.returncode:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout
