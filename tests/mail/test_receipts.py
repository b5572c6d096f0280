"""The SMTP receipts' insert on the event loop (apps.mail.receipts): committed before it returns, exact bytes, one job
per message after the commit, repeats stored as duplicates by the same statement, Django's errors (so 451) when
PostgreSQL cannot be reached, and a reconnect when PostgreSQL drops the pooled connections (as a restart does)."""

import asyncio
import contextlib
import os
import smtplib

import psycopg
import pytest
from django.db import DatabaseError, OperationalError, connection

from apps.agents.models import Agent
from apps.core import aiodb, jobs, runtime
from apps.mail import receipts
from apps.mail.models import InboundEmail
from tests.mail.support import TcpProxy
from tests.mail.test_receive import item, queued_process_jobs
from tests.mail.test_smtp import SKYPARK, raw_labels
from tests.support import start_server

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def private_queue(settings):
    """A queue of these tests' own (the session's `parkgate` worker polls the default one)."""
    settings.ARQ_QUEUE_NAME = "parkgate:tests-mail-receipts"
    asyncio.run(queued_process_jobs())  # start empty


@pytest.fixture
def skypark(demo_world) -> Agent:
    return Agent.objects.get(code="skypark")


def on_a_server_loop(coro_factory):
    """Run `coro_factory()` on a fresh loop standing in for serve's (the jobs are sent on it), then close what the
    loop opened: the receipts' pool, the arq pool, the jobs sent in the background."""

    async def main():
        runtime.set_main_loop(asyncio.get_running_loop())
        try:
            return await coro_factory()
        finally:
            await runtime.drain(wait_s=10)
            await receipts.close()
            runtime.set_main_loop(None)
            if jobs._arq_pool is not None:
                await jobs._arq_pool.aclose()
                jobs._arq_pool = None

    return asyncio.run(main())


def test_a_batch_is_committed_on_the_loop_exactly_and_queues_one_job_per_message(skypark):
    items = [item(skypark, f"RCP-{i}") for i in range(4)]

    async def store():
        ids = await receipts.inbound_emails_receive_async(items=items)
        return ids, receipts._pools.current.pool.get_stats()

    ids, stats = on_a_server_loop(store)
    assert stats["requests_num"] == 1  # the batch took one connection of the loop's pool
    stored = InboundEmail.objects.in_bulk(ids)  # read by another session: committed
    assert [bytes(stored[i].raw) for i in ids] == [it["raw"] for it in items]  # exact bytes, in order
    assert [stored[i].status for i in ids] == ["received"] * 4
    assert all(stored[i].peer == "10.1.2.3" and stored[i].rcpt_tos == [SKYPARK] for i in ids)
    assert asyncio.run(queued_process_jobs()) == sorted(ids)


def test_repeats_are_stored_as_duplicates_by_the_same_statement_and_the_connection_stays_usable(skypark):
    first, other, third = item(skypark, "RCP-A"), item(skypark, "RCP-B"), item(skypark, "RCP-C")
    repeat = dict(first, peer="10.9.9.9")

    async def store():
        # One connection: the batches after a repeat run on the connection that stored it.
        pool = aiodb.LoopPool(name="test-receipts", min_size=1, max_size=1)
        writer = receipts.ReceiptWriter(pool)
        try:
            in_batch = await writer.receive([first, other, repeat])
            later = await writer.receive([dict(other, peer="10.8.8.8"), third])
            plain = await writer.receive([item(skypark, "RCP-D")])
            return in_batch, later, plain
        finally:
            await pool.close()

    in_batch, later, plain = on_a_server_loop(store)
    rows = InboundEmail.objects.in_bulk(in_batch + later + plain)
    assert [rows[i].status for i in in_batch] == ["received", "received", "duplicate"]
    assert rows[in_batch[2]].duplicate_of_id == in_batch[0] and rows[in_batch[2]].peer == "10.9.9.9"
    assert [rows[i].status for i in later] == ["duplicate", "received"]
    assert rows[later[0]].duplicate_of_id == in_batch[1]
    assert rows[plain[0]].status == "received"
    assert asyncio.run(queued_process_jobs()) == sorted([in_batch[0], in_batch[1], later[1], plain[0]])


def test_database_unreachable_raises_django_errors_then_reconnects(skypark):
    db = connection.settings_dict
    proxy = TcpProxy((db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432)))
    outcomes = []

    async def store():
        pool = aiodb.LoopPool(name="test-receipts", timeout=1.0, port=proxy.port)
        writer = receipts.ReceiptWriter(pool)
        try:
            outcomes.append(await writer.receive([item(skypark, "RCP-UP")]))
            proxy.cut()
            for ref in ("RCP-DOWN-1", "RCP-DOWN-2"):  # the dead connections dropped, no new one to be had
                with pytest.raises(DatabaseError) as failed:
                    await writer.receive([item(skypark, ref)])
                assert isinstance(failed.value, OperationalError)
                assert isinstance(failed.value.__cause__, psycopg.OperationalError)
                outcomes.append(ref)
            proxy.restore()
            for _ in range(40):  # the pool reconnects in the background, with a back-off
                try:
                    return [*outcomes, await writer.receive([item(skypark, "RCP-BACK")])]
                except OperationalError:
                    await asyncio.sleep(0.5)
            raise AssertionError("no reconnect within 20 s of the database coming back")
        finally:
            await pool.close()

    try:
        up, *down, back = on_a_server_loop(store)
    finally:
        proxy.cut()
    assert down == ["RCP-DOWN-1", "RCP-DOWN-2"]
    assert InboundEmail.objects.filter(pk__in=up + back, status="received").count() == 2
    assert not any("DOWN" in bytes(e.raw).decode() for e in InboundEmail.objects.all())


def local_ports(pid: int) -> set[int]:
    """The local TCP ports of a process's sockets (Linux /proc): its connections' client ports as PostgreSQL sees
    them, so that only this server's connections are dropped (not the shared `parkgate` server's)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                if fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_after_postgresql_drops_the_pooled_connections_the_next_message_gets_250(server_env, demo_world):
    server = start_server(server_env, name="mail-receipts", worker=False)
    log_start = len(server.serve.log())
    try:
        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as smtp:
            assert smtp.sendmail("a@agent.example", [SKYPARK], raw_labels("RESTART-1")) == {}
        with connection.cursor() as cursor:  # what a restart does to them (and wait until they are gone)
            cursor.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
                " WHERE application_name = %s AND client_port = ANY(%s)",
                [receipts.APPLICATION_NAME, sorted(local_ports(server.serve.proc.pid))],
            )
            terminated = [ok for (ok,) in cursor.fetchall()]
        assert terminated and all(terminated)
        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as smtp:
            smtp.ehlo()
            smtp.mail("a@agent.example")
            smtp.rcpt(SKYPARK)
            code, reply = smtp.data(raw_labels("RESTART-2"))  # no 451: the dead connections are replaced first
        assert code == 250, reply
        stored = InboundEmail.objects.get(pk=int(reply.split()[-1]))
        assert b"RESTART-2" in bytes(stored.raw)
    finally:
        codes = server.stop()
    assert codes == [0]
    assert "Traceback" not in server.serve.log()[log_start:]  # nor at shutdown (the receipts' pool is closed)
