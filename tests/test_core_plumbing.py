"""apps.core's jobs and events: sent only after commit, never for work that rolled back (real Redis)."""

import asyncio
import time

import pytest
from arq import create_pool
from arq.connections import RedisSettings
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

from apps.core import events, jobs, runtime

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def private_queue(settings):
    """A queue of these tests' own: the session's `parkgate` worker polls the default one and would take the jobs."""
    settings.ARQ_QUEUE_NAME = "parkgate:tests-plumbing"


class Rollback(Exception):
    pass


@jobs.job("tests.noop")
def noop(*, thing_id: int) -> None:
    """A job for these tests only."""


async def queued_job_kwargs() -> list[dict]:
    pool = await create_pool(RedisSettings.from_dsn(settings.REDIS_URL), default_queue_name=settings.ARQ_QUEUE_NAME)
    try:
        jobs_ = await pool.queued_jobs(queue_name=settings.ARQ_QUEUE_NAME)
        await pool.delete(settings.ARQ_QUEUE_NAME)  # leave nothing for the next test
        return [job.kwargs for job in jobs_ if job.function == "tests.noop"]
    finally:
        await pool.aclose()


def enqueue_in_transaction(thing_id: int, *, commit: bool) -> None:
    try:
        with transaction.atomic():
            jobs.enqueue("tests.noop", thing_id=thing_id)
            if not commit:
                raise Rollback
    except Rollback:
        pass


async def test_jobs_are_enqueued_after_commit_and_never_after_rollback():
    await sync_to_async(enqueue_in_transaction)(1, commit=False)
    await sync_to_async(enqueue_in_transaction)(2, commit=True)
    for _ in range(50):
        queued = await queued_job_kwargs()
        if queued:
            break
        await asyncio.sleep(0.05)
    assert queued == [{"thing_id": 2}]


def enqueue_coalesced_burst(thing_ids: list[int]) -> set[int]:
    windows = set()
    for thing_id in thing_ids:
        with transaction.atomic():
            windows.add(int(time.time() // 60))
            jobs.enqueue_coalesced("tests.noop", key="burst", window_s=60, thing_id=thing_id)
    return windows


async def test_a_burst_of_coalesced_enqueues_queues_one_job_per_window():
    windows = await sync_to_async(enqueue_coalesced_burst)([1, 2, 3, 4, 5])
    await asyncio.sleep(0.5)
    queued = await queued_job_kwargs()
    assert len(queued) == len(windows)  # 1, or 2 if the burst straddled a minute
    assert queued[0] == {"thing_id": 1}


async def test_batches_sent_while_one_is_in_flight_go_together_and_a_failed_send_stops_nothing(
    server_loop, monkeypatch
):
    """The SMTP receipts' path (enqueue_many_committed): the first batch goes at once; batches arriving during its
    round trip go in one MULTI/EXEC after it, even when the first send failed (that batch's messages are left to
    the mail sweep)."""
    sends, real_send = [], jobs._arq_enqueue_many

    async def spy(batch):
        sends.append([kwargs["thing_id"] for _, kwargs in batch])
        if len(sends) == 1:
            await asyncio.sleep(0.05)  # a slow round trip, while the next batches come in
            raise ConnectionError("Redis went away")
        await real_send(batch)

    monkeypatch.setattr(jobs, "_arq_enqueue_many", spy)
    try:
        jobs.enqueue_many_committed("tests.noop", [{"thing_id": 1}, {"thing_id": 2}])
        await asyncio.sleep(0.01)
        jobs.enqueue_many_committed("tests.noop", [{"thing_id": 3}])
        jobs.enqueue_many_committed("tests.noop", [{"thing_id": 4}, {"thing_id": 5}])
        await runtime.drain(wait_s=5)
        assert sends == [[1, 2], [3, 4, 5]]
        assert sorted(kwargs["thing_id"] for kwargs in await queued_job_kwargs()) == [3, 4, 5]
    finally:
        if jobs._arq_pool is not None:  # opened on this test's loop
            await jobs._arq_pool.aclose()
            jobs._arq_pool = None


def test_unknown_job_names_fail_loudly():
    with pytest.raises(KeyError):
        jobs.enqueue("tests.no_such_job")


def publish_in_transaction(occupancy: int, *, commit: bool) -> None:
    try:
        with transaction.atomic():
            events.publish_to_carpark(carpark_id=999, kind="occupancy", data={"occupancy": occupancy})
            if not commit:
                raise Rollback
    except Rollback:
        pass


async def test_events_reach_the_group_after_commit_and_never_after_rollback():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(events.carpark_group(999), channel)
    try:
        await sync_to_async(publish_in_transaction)(1, commit=False)
        await sync_to_async(publish_in_transaction)(2, commit=True)
        message = await asyncio.wait_for(layer.receive(channel), timeout=5)
        assert message == {"type": "carpark.event", "kind": "occupancy", "data": {"occupancy": 2}}
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(layer.receive(channel), timeout=0.3)
    finally:
        await layer.group_discard(events.carpark_group(999), channel)


@pytest.fixture
async def server_loop():
    """The test's loop stands in for `serve`'s: committed events go through the process's outbox and its sender."""
    runtime.set_main_loop(asyncio.get_running_loop())
    yield
    runtime.set_main_loop(None)


def publish_decisions(decisions: list[tuple[int, bool]]) -> None:
    """Per (n, commit): one transaction publishing what a decision does (read, visit, occupancy) to car park 999
    and one event to car park 998; rolled back unless `commit`."""
    for n, commit in decisions:
        try:
            with transaction.atomic():
                events.publish_to_carpark(carpark_id=999, kind="read", data={"id": n})
                events.publish_to_carpark(carpark_id=998, kind="read", data={"id": n})
                events.publish_to_carpark(carpark_id=999, kind="visit", data={"id": n})
                events.publish_to_carpark(carpark_id=999, kind="occupancy", data={"occupancy": None})
                if not commit:
                    raise Rollback
        except Rollback:
            pass


async def receive_all(layer, channel: str, quiet_s: float = 0.5) -> list[dict]:
    messages = []
    while True:
        try:
            messages.append(await asyncio.wait_for(layer.receive(channel), timeout=quiet_s))
        except TimeoutError:
            return messages


async def test_a_servers_events_go_out_merged_per_group_in_commit_order_and_never_after_rollback(server_loop):
    layer = get_channel_layer()
    one, other = await layer.new_channel(), await layer.new_channel()
    await layer.group_add(events.carpark_group(999), one)
    await layer.group_add(events.carpark_group(998), other)
    try:
        decisions = [(n, n % 3 != 1) for n in range(1, 31)]  # every third one rolls back
        await sync_to_async(publish_decisions)(decisions)
        received = await receive_all(layer, one)
        received_other = await receive_all(layer, other)
    finally:
        await layer.group_discard(events.carpark_group(999), one)
        await layer.group_discard(events.carpark_group(998), other)
    committed = [n for n, commit in decisions if commit]
    expected = [("read", {"id": n}) for n in committed]
    assert [e for m in received_other for e in events.carpark_messages(m)] == expected
    expected = [
        e for n in committed for e in (("read", {"id": n}), ("visit", {"id": n}), ("occupancy", {"occupancy": None}))
    ]
    assert [e for m in received for e in events.carpark_messages(m)] == expected
    assert len(received) < len(committed)  # a decision's events travel together: fewer messages than decisions
    assert {m["type"] for m in received} <= {"carpark.events", "carpark.event"}


def test_merging_keeps_order_splits_long_runs_and_leaves_other_messages_alone():
    car = [{"type": "carpark.event", "kind": "read", "data": {"id": n}} for n in range(events.MAX_BATCH + 3)]
    staff = {"type": "staff.event", "user": 1, "kind": "roles", "data": {}}
    out = events.merged([car[0], staff, *car[1:]])
    assert out[0] == car[0] and out[1] == staff
    assert [m["type"] for m in out[2:]] == ["carpark.events", "carpark.events"]
    assert [d for m in out for _, d in events.carpark_messages(m)] == [m["data"] for m in car]
    assert all(len(m.get("events", ())) <= events.MAX_BATCH for m in out)


async def test_with_the_channel_layer_down_publishing_returns_and_logs_the_loss(server_loop, settings, caplog):
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]}}
    }
    from channels.layers import channel_layers

    channel_layers.backends.pop("default", None)
    try:
        await sync_to_async(publish_decisions)([(1, True), (2, True)])  # returns: the sender runs on the loop
        for _ in range(100):
            if "not sent" in caplog.text:
                break
            await asyncio.sleep(0.05)
        assert "event to carpark.999 not sent" in caplog.text
    finally:
        channel_layers.backends.pop("default", None)
