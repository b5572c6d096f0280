"""Parkgate's instruments, in the Prometheus text format at `GET /metrics` (project/views.py).

Several `serve` and `worker` processes run side by side, so prometheus-client runs in its multi-process mode: each
process writes its samples to files in `PROMETHEUS_MULTIPROC_DIR` (settings.py sets it before this module is
imported) and a scrape of any one process adds up every process's files. Live gauges (connections) count only
processes still running: `serve` marks itself dead on exit, and `process_files_tidy` forgets the processes that
died without saying so.
"""

import glob
import os
import re

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

# Decisions are a few milliseconds; a slow one (a lock wait, a cold cache) up to a second.
_DECISION_BUCKETS = (0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0)

decision_seconds = Histogram(
    "parkgate_decision_seconds",
    "From a plate read's arrival to its decision being ready to send (committed), by reason.",
    ["reason"],
    buckets=_DECISION_BUCKETS,
)
plate_reads_total = Counter("parkgate_plate_reads_total", "Plate reads decided, by action.", ["action"])
smtp_sessions_total = Counter("parkgate_smtp_sessions_total", "SMTP sessions opened.")
smtp_replies_total = Counter("parkgate_smtp_replies_total", "SMTP replies sent, by reply code.", ["code"])
email_receipt_seconds = Histogram(
    "parkgate_email_receipt_seconds",
    "From a message's final '.' to its durable commit (the 250 follows).",
    buckets=_DECISION_BUCKETS,
)
job_seconds = Histogram(
    "parkgate_job_seconds",
    "Background job run time, by job.",
    ["job"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300),
)
jobs_total = Counter("parkgate_jobs_total", "Background jobs run, by job and outcome.", ["job", "outcome"])
websocket_connections = Gauge(
    "parkgate_websocket_connections", "Open WebSocket connections, by kind.", ["kind"], multiprocess_mode="livesum"
)


def decision_observed(decision: dict, *, seconds: float) -> None:
    """A decision frame about to be sent, `seconds` after its read arrived (duplicates count as decisions too)."""
    decision_seconds.labels(decision.get("reason") or "none").observe(seconds)
    plate_reads_total.labels(decision.get("action") or "none").inc()


def render(*, queue_depth: int | None = None) -> bytes:
    """Every live process's samples, plus the job queue's depth read at scrape time (one shared queue)."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    if queue_depth is not None:
        registry.register(_QueueDepth(queue_depth))
    return generate_latest(registry)


class _QueueDepth:
    """Read at scrape time, not a multi-process gauge (whose files would keep every scraping process's last value):
    the queue is one Redis key, the same for every process."""

    def __init__(self, depth: int):
        self.depth = depth

    def collect(self):
        yield GaugeMetricFamily("parkgate_job_queue_depth", "Jobs waiting in the queue.", value=self.depth)


def process_exited(pid: int | None = None) -> None:
    multiprocess.mark_process_dead(pid or os.getpid())


def process_files_tidy() -> None:
    """Forget the live gauges of processes that are gone (killed, say), so their connections stop counting."""
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    for path in glob.glob(os.path.join(directory, "gauge_live*_*.db")):
        match = re.search(r"_(\d+)\.db$", path)
        if match and not _alive(int(match.group(1))):
            process_exited(int(match.group(1)))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
