"""Local stand-ins for what messages leave through: an SMTP sink (aiosmtpd, a real SMTP server on a free port) and
an SMS provider's HTTP API (the standard library's HTTP server), both recording what they receive."""

import json
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

from tests.support import free_port


class SmtpSink:
    def __init__(self):
        self.received: list[EmailMessage] = []
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope):
        self.received.append(message_from_bytes(envelope.original_content, policy=policy.default))
        return "250 OK"

    def start(self) -> "SmtpSink":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


class JsonApi:
    """A provider's JSON HTTP API on a free port (the standard library's server): each POST is answered with what
    `answer` returns and recorded as its body, its Authorization header (`auth`) and that answer."""

    path = "/"

    def __init__(self):
        self.received: list[dict] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, reply = api.answer(self.path, self.headers, body)
                api.received.append(body | {"auth": self.headers.get("Authorization")} | reply)
                answer = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}{self.path}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, path: str, headers, body: dict) -> tuple[int, dict]:
        raise NotImplementedError

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SmsProvider(JsonApi):
    path = "/messages"

    def answer(self, path, headers, body):
        return 201, {"id": f"sms-{len(self.received) + 1}"}
