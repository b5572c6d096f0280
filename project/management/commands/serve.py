"""`manage.py serve`: daphne (HTTP + WebSockets), the SMTP server and, without Redis, the job worker, on one loop.

Daphne has no ASGI lifespan, so the extras are started from its `ready_callable` once the Twisted reactor runs,
and stopped from the reactor's "before shutdown" trigger (SIGTERM/SIGINT), before the loop closes.
"""

import asyncio
import gc
import logging
import sys

import daphne.server  # noqa: F401  (must come first: installs Twisted's asyncio reactor)
from daphne.endpoints import build_endpoint_description_strings
from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol as DaphneWebSocketProtocol
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from twisted.internet import defer, reactor

from apps.core import jobs, metrics, runtime

log = logging.getLogger("parkgate.serve")


class WebSocketProtocol(DaphneWebSocketProtocol):
    """Daphne's protocol, also letting the application close with 1013 (try again later), a registered code that
    device-protocol.md 2 requires when the database is down; Autobahn only lets applications send 1000 and 3000-4999."""

    def serverClose(self, code=None):
        if code == 1013:
            self.sendCloseFrame(code=code, isReply=False)
        else:
            super().serverClose(code)


def host_port(value: str, option: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise CommandError(f"{option} takes HOST:PORT, not {value!r}")
    return host.strip("[]"), int(port)


class Command(BaseCommand):
    help = "Run Parkgate: HTTP and WebSockets, the SMTP server and (without REDIS_URL) the job worker."
    # Checked in handle() without touching the database: serve comes up (healthz 200, readyz 503) while PostgreSQL
    # is down, and Django's model checks otherwise connect to ask its version (GeneratedField).
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--http", default="127.0.0.1:8000", help="HOST:PORT for HTTP and WebSockets")
        parser.add_argument("--smtp", default="127.0.0.1:2525", help="HOST:PORT for the SMTP server")
        parser.add_argument("--no-smtp", action="store_true", help="do not run the SMTP server")
        parser.add_argument("--no-worker", action="store_true", help="do not run jobs in this process (no REDIS_URL)")
        parser.add_argument(
            "--websockets",
            help="WebSocket routes to accept, comma-separated: device, dashboard (default SERVE_WEBSOCKETS: both)",
        )

    def handle(self, *args, **options):
        self.check(databases=[])
        # The loop and the decision threads (apps.access.decision) hand the GIL to each other a few times per batch;
        # with Python's default switch interval (5 ms) each hand-over can wait that long while the other computes.
        sys.setswitchinterval(0.0005)
        http_host, http_port = host_port(options["http"], "--http")
        self.smtp_addr = None if options["no_smtp"] else host_port(options["smtp"], "--smtp")
        self.run_worker = settings.PARKGATE_JOBS_BACKEND == "inprocess" and not options["no_worker"]
        self.smtp_server: asyncio.Server | None = None
        self.worker_task: asyncio.Task | None = None
        if options["websockets"]:
            routes = [r.strip() for r in options["websockets"].split(",") if r.strip()]
            if not routes or set(routes) - {"device", "dashboard"}:
                raise CommandError(f"--websockets takes device and/or dashboard, not {options['websockets']!r}")
            settings.SERVE_WEBSOCKETS = routes  # read once, when asgi builds the router below

        from asgi import application

        self.server = Server(
            application=application,
            endpoints=build_endpoint_description_strings(host=http_host, port=http_port),
            signal_handlers=True,
            ready_callable=lambda: reactor.callWhenRunning(self.start_extras),
            verbosity=0,
            application_close_timeout=5,
            websocket_max_message_size=1024 * 1024,  # device-protocol.md 2: frames over 1 MiB close with 1009
        )
        metrics.process_files_tidy()  # live gauges of processes killed before they could say so
        try:
            self.server.run()
        finally:
            metrics.process_exited()
        log.info("stopped")

    # --- started once the reactor (and so the asyncio loop) runs -------------------------------------------------

    def start_extras(self) -> None:
        loop = asyncio.get_event_loop()
        runtime.set_main_loop(loop)
        # What start-up loaded (Django, URL conf, models, the application) lives as long as the process: keep it out
        # of the garbage collector's full passes, whose pauses would land on some decisions' round trips.
        gc.collect()
        gc.freeze()
        # Autobahn drops the TCP connection on protocol violations by default; a close frame instead lets a lane
        # controller see 1009 for a frame over 1 MiB (device-protocol.md 2). Copied to each new connection.
        self.server.ws_factory.setProtocolOptions(failByDrop=False)
        self.server.ws_factory.protocol = WebSocketProtocol
        reactor.addSystemEventTrigger("before", "shutdown", self.stop_extras)
        defer.DeferredList(self.server.listeners).addCallback(self.log_http_ready)
        if self.smtp_addr:
            self.smtp_start_task = loop.create_task(self.start_smtp())
        if self.run_worker:
            self.worker_task = loop.create_task(jobs.run_inprocess_worker())
            log.info("jobs: in-process worker running (no REDIS_URL)")
        elif settings.PARKGATE_JOBS_BACKEND == "arq":
            log.info("jobs: queued to Redis for `manage.py worker`")

    def log_http_ready(self, _results) -> None:
        for host, port in self.server.listening_addresses:
            routes = ", ".join(f"/ws/{route}/" for route in settings.SERVE_WEBSOCKETS)
            log.info("HTTP listening on http://%s:%s/ (WebSockets: %s)", host, port, routes)

    async def start_smtp(self) -> None:
        from smtp_ingress.server import start_smtp_server

        host, port = self.smtp_addr
        try:
            self.smtp_server = await start_smtp_server(host, port)
        except OSError as exc:
            log.critical("SMTP cannot listen on %s:%s: %s", host, port, exc)
            reactor.stop()
            return
        for sock in self.smtp_server.sockets:
            log.info("SMTP listening on %s:%s", *sock.getsockname()[:2])

    # --- stopped before the reactor shuts down ---------------------------------------------------------------------

    def stop_extras(self):
        return defer.Deferred.fromFuture(asyncio.ensure_future(self._stop_extras()))

    async def _stop_extras(self) -> None:
        if self.smtp_server is not None:
            self.smtp_server.close()  # no new sessions; sessions in progress may finish their message
            try:
                await asyncio.wait_for(self.smtp_server.wait_closed(), timeout=10)
            except TimeoutError:
                log.warning("SMTP sessions still open at shutdown were cut; unacknowledged mail will be resent")
            from apps.mail import receipts

            await receipts.close()  # the receipts' own connection pool (PostgreSQL), if the loop opened one
        if self.worker_task is not None:
            self.worker_task.cancel()  # queued in-process jobs are re-found by the periodic sweeps
        await runtime.drain(wait_s=5)
        from apps.access.decision import batcher

        await asyncio.to_thread(batcher.connections_close)  # the decision threads' pooled connections
