"""A real HTTP receiver for webhook tests: a threaded stdlib server on a free port that records every request and
answers from a per-path plan (status codes, delays)."""

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support import free_port


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() when it arrived
    status: int  # what the receiver answered

    @property
    def json(self) -> dict:
        return json.loads(self.body)


class Receiver:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.plans: dict[str, list[tuple[int, float]]] = {}  # path -> [(status, delay_s), ...] used up in turn
        self.port = free_port()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.lock:
                    plan = receiver.plans.get(self.path)
                    status, delay = plan.pop(0) if plan else (200, 0.0)
                if delay:
                    time.sleep(delay)
                at = time.time()
                try:
                    self.send_response(status)
                    self.send_header("content-length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok" if status < 300 else b"no")
                except OSError:
                    return  # the sender timed out and hung up: not received
                with receiver.lock:
                    receiver.received.append(Received(self.path, dict(self.headers), body, at, status))

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def plan(self, path: str, *responses: tuple[int, float]) -> None:
        with self.lock:
            self.plans[path] = list(responses)

    def at(self, path: str, ok_only: bool = True) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path and (r.status < 300 or not ok_only)]

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
