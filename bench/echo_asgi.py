"""The baselines for bench/gateway.py, served by daphne like `manage.py serve`, with Parkgate's settings (same
channel layer). Bench-only: not part of the application.

  - `/`: a bare Channels JSON echo consumer: the protocol's framing without any decision (the targets' baseline);
  - `/floor/2/`: the echo, after the least a decision that locks, reads and then writes durably pays: two round
    trips on the project's own loop connections (apps.core.aiodb), BEGIN and an advisory lock, then an insert and
    COMMIT. No facts, no rules, one small table: what is left between it and a decision is the decision's own work;
  - `/floor/1/`: the same with one round trip (BEGIN, insert, COMMIT): the floor of a design that would decide
    inside PostgreSQL (the rules in SQL).
"""

import json
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

import psycopg  # noqa: E402
from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402  (after Django is set up)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from apps.core import aiodb, sql  # noqa: E402

with psycopg.connect(**aiodb.connect_kwargs("bench-floor"), autocommit=True) as _conn:  # before any consumer
    _conn.execute("CREATE TABLE IF NOT EXISTS bench_floor (id bigserial PRIMARY KEY, read_id text NOT NULL)")
LOCK = sql.statement("SELECT pg_advisory_xact_lock(hashtext(%s))")
INSERT = sql.statement("INSERT INTO bench_floor (read_id) VALUES (%s) RETURNING id")


class EchoConsumer(AsyncWebsocketConsumer):
    """Parses each JSON frame and sends it back."""

    async def receive(self, text_data=None, bytes_data=None):
        await self.send(text_data=json.dumps(json.loads(text_data)))


class FloorConsumer(AsyncWebsocketConsumer):
    """Parses each JSON frame, records it in `round_trips` round trips (one transaction, durable commit), and sends
    it back."""

    pools = aiodb.PerLoop("bench-floor", min_size=2, max_size=8)

    async def receive(self, text_data=None, bytes_data=None):
        frame = json.loads(text_data)
        round_trips = self.scope["url_route"]["kwargs"]["round_trips"]
        async with self.pools.get().connection() as conn:
            if round_trips == 2:
                await sql.run_async(conn, "BEGIN", LOCK([frame["plate"]]))
                await sql.run_async(conn, INSERT([frame["read_id"]]), "COMMIT")
            else:
                await sql.run_async(conn, "BEGIN", INSERT([frame["read_id"]]), "COMMIT")
        await self.send(text_data=json.dumps(frame))


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(
            [path("", EchoConsumer.as_asgi()), path("floor/<int:round_trips>/", FloorConsumer.as_asgi())]
        ),
    }
)
