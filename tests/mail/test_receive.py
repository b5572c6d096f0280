"""Durable receipt, the SMTP edge's group commit (services.inbound_emails_receive): a batch of messages stored in one
commit by a hand-written insert, and one `mail.process` job per message sent to the real Redis after the commit."""

import asyncio
from datetime import timedelta
from email.utils import make_msgid

import pytest
from arq import create_pool
from arq.connections import RedisSettings
from django.conf import settings

from apps.agents.models import Agent
from apps.bookings.models import Booking
from apps.mail import services
from apps.mail.models import InboundEmail
from tests.mail.messages import labels_text, message
from tests.support import free_port

pytestmark = pytest.mark.django_db(transaction=True)

SKYPARK = "skypark@bookings.parkgate.test"


@pytest.fixture(autouse=True)
def private_queue(settings):
    """A queue of these tests' own: the session's `parkgate` worker polls the default one and would take the jobs."""
    settings.ARQ_QUEUE_NAME = "parkgate:tests-mail-receive"
    asyncio.run(queued_process_jobs())  # start empty


async def queued_process_jobs() -> list[int]:
    """The message ids of the `mail.process` jobs waiting in the private queue (which is emptied)."""
    pool = await create_pool(RedisSettings.from_dsn(settings.REDIS_URL), default_queue_name=settings.ARQ_QUEUE_NAME)
    try:
        jobs = await pool.queued_jobs(queue_name=settings.ARQ_QUEUE_NAME)
        await pool.delete(settings.ARQ_QUEUE_NAME)
        return sorted(job.kwargs["message_id"] for job in jobs if job.function == "mail.process")
    finally:
        await pool.aclose()


def item(agent: Agent, ref: str, *, message_id: str | None = None) -> dict:
    msg = message(labels_text(ref=ref, plate="RC12 PTX"), message_id=message_id or make_msgid(domain="rc.example"))
    raw = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
    return {"agent_id": agent.id, "raw": raw, "mail_from": "res@rc.example", "rcpt_tos": [SKYPARK], "peer": "10.1.2.3"}


@pytest.fixture
def skypark(demo_world) -> Agent:
    return Agent.objects.get(code="skypark")


def test_a_batch_is_stored_in_order_and_queues_one_job_per_message(skypark):
    items = [item(skypark, f"RCV-{i}") for i in range(5)]
    ids = services.inbound_emails_receive(items=items)
    stored = InboundEmail.objects.in_bulk(ids)
    assert [bytes(stored[i].raw) for i in ids] == [it["raw"] for it in items]  # exact bytes, each under its own id
    assert all(stored[i].status == InboundEmail.Status.RECEIVED for i in ids)
    assert asyncio.run(queued_process_jobs()) == sorted(ids)  # one job each, sent once the batch committed


def test_the_hand_written_insert_stores_what_the_orm_would(skypark):
    one = item(skypark, "RCV-ORM")
    (stored_id,) = services.inbound_emails_receive(items=[one])
    stored = InboundEmail.objects.get(pk=stored_id)
    by_orm = InboundEmail(**services._fields(**one))  # the model's defaults, never saved
    for field in InboundEmail._meta.concrete_fields:
        if field.name not in ("id", "received_at"):
            assert field.value_from_object(stored) == field.value_from_object(by_orm), field.name
    assert stored.received_at is not None and stored.peer == "10.1.2.3" and stored.rcpt_tos == [SKYPARK]
    assert stored.message_id.startswith("<") and stored.subject == "Booking" and stored.size == len(one["raw"])


def test_a_repeat_inside_a_batch_is_stored_as_duplicate_and_gets_no_job(skypark):
    first, other = item(skypark, "RCV-A"), item(skypark, "RCV-B")
    repeat = dict(first, peer="10.9.9.9")  # the same message again, from another relay
    ids = services.inbound_emails_receive(items=[first, other, repeat])
    rows = InboundEmail.objects.in_bulk(ids)
    assert [rows[i].status for i in ids] == ["received", "received", "duplicate"]
    assert rows[ids[2]].duplicate_of_id == ids[0]
    assert asyncio.run(queued_process_jobs()) == sorted(ids[:2])


def test_with_redis_down_the_batch_is_still_stored_and_the_sweep_applies_it(skypark, settings):
    redis_url, settings.REDIS_URL = settings.REDIS_URL, f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    items = [item(skypark, f"RCV-DOWN-{i}") for i in range(3)]
    ids = services.inbound_emails_receive(items=items)  # the enqueue fails after the commit; the caller is not told
    assert InboundEmail.objects.filter(pk__in=ids, status="received").count() == 3
    settings.REDIS_URL = redis_url  # Redis is back (the bookings' own follow-up jobs need it); no job was queued
    assert asyncio.run(queued_process_jobs()) == []
    assert services.inbound_email_sweep(older_than=timedelta(0)) == 3
    assert InboundEmail.objects.filter(pk__in=ids, status="processed").count() == 3
    assert Booking.objects.filter(agent_ref__startswith="RCV-DOWN-").count() == 3
    assert services.inbound_email_process(message_id=ids[0]) is None  # a late job, run again: applies nothing
    assert Booking.objects.filter(agent_ref__startswith="RCV-DOWN-").count() == 3
