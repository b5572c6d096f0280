"""The per-process fan-out's coalescing and snapshot sharing, without servers (consumers/fanout.py)."""

import asyncio
import json

from consumers.fanout import MAX_READS, CarparkFanout, Delta
from consumers.snapshots import SnapshotBatcher


def test_a_burst_folds_into_one_delta_with_the_latest_state():
    delta = Delta()
    for n in range(1, 51):
        delta.add("occupancy", {"carpark": "LHR-T5", "occupancy": n})
        delta.add("read", {"id": n, "plate": f"P{n}"})
    delta.add("alert", {"id": 7, "acknowledged_by": None})
    delta.add("alert", {"id": 7, "acknowledged_by": "olivia"})
    delta.add("device", {"device": "d1", "online": True})
    delta.add("device", {"device": "d1", "online": False})
    delta.add("command", {"command_id": "c-1", "status": "pending", "issued_by": None})  # routine: left out
    delta.add("command", {"command_id": "c-2", "status": "timed_out", "issued_by": None})
    delta.add("command", {"command_id": "c-3", "status": "done", "issued_by": "olivia"})
    delta.add("booking", {"reference": "PG-1", "status": "confirmed"})
    delta.add("booking", {"reference": "PG-2", "status": "confirmed"})
    delta.add("booking", {"reference": "PG-1", "status": "no_show"})
    frame = delta.frame(1, "LHR-T5")
    assert frame["occupancy"] == 50
    assert [r["id"] for r in frame["reads"]] == list(range(51 - MAX_READS, 51))
    assert frame["alerts"] == [{"id": 7, "acknowledged_by": "olivia"}]
    assert frame["devices"] == [{"device": "d1", "online": False}]
    assert [c["command_id"] for c in frame["commands"]] == ["c-2", "c-3"]
    assert [(b["reference"], b["status"]) for b in frame["bookings"]] == [("PG-2", "confirmed"), ("PG-1", "no_show")]


class Socket:
    def __init__(self):
        self.frames = []

    async def deliver(self, text):
        self.frames.append(json.loads(text))

    async def resync(self):
        pass


async def test_events_reach_only_that_car_parks_sockets_coalesced_within_the_interval():
    fanout = CarparkFanout(layer=None, flush_s=0.2)
    counts = iter(range(100, 200))

    async def occupancy(carpark_id, reported):  # the recount at flush (the database, in production)
        return next(counts)

    fanout._occupancy = occupancy
    lhr, man = Socket(), Socket()
    fanout.subscribers[1].add(lhr)
    fanout.subscribers[2].add(man)
    fanout.codes.update({1: "LHR-T5", 2: "MAN-T2"})
    fanout.add(1, "occupancy", {"carpark": "LHR-T5", "occupancy": 1})  # alone: goes out at once
    await asyncio.sleep(0.05)
    for n in range(2, 30):
        fanout.add(1, "read", {"id": n})
    await asyncio.sleep(0.4)
    assert man.frames == []
    assert len(lhr.frames) == 2  # the lone event, then the burst as one frame
    assert lhr.frames[0]["occupancy"] == 100 and lhr.frames[1]["occupancy"] is None
    assert len(lhr.frames[1]["reads"]) == MAX_READS


async def test_sockets_asking_together_share_a_snapshot_started_after_they_asked():
    started = []

    async def compute(ids):
        started.append(tuple(ids))
        await asyncio.sleep(0.05)
        return f"snapshot {len(started)}"

    batcher = SnapshotBatcher(compute)
    first = asyncio.create_task(batcher.get([2, 1]))
    await asyncio.sleep(0.01)  # the first computation is running: later askers wait for the next one
    rest = [asyncio.create_task(batcher.get([1, 2])) for _ in range(50)]
    results = await asyncio.gather(first, *rest)
    assert results[0] == "snapshot 1" and set(results[1:]) == {"snapshot 2"}
    assert started == [(1, 2), (1, 2)]


def test_an_occupancy_event_without_a_count_still_asks_for_a_recount():
    delta = Delta()
    delta.add("occupancy", {"carpark": "LHR-T5", "occupancy": 7})
    delta.add("occupancy", {"carpark": "LHR-T5", "occupancy": None})  # "changed, recount" (the decision path)
    assert delta and delta.needs_count and delta.occupancy == 7  # 7: the fallback if the recount fails
    alone = Delta()
    alone.add("occupancy", {"carpark": "LHR-T5", "occupancy": None})
    assert alone and alone.needs_count and alone.occupancy is None
    reads_only = Delta()
    reads_only.add("read", {"id": 1})
    assert reads_only and not reads_only.needs_count


async def test_events_sent_together_reach_the_sockets_in_order_with_a_recounted_occupancy():
    from channels.layers import InMemoryChannelLayer

    from apps.core.events import carpark_group

    layer = InMemoryChannelLayer()
    fanout = CarparkFanout(layer=layer, flush_s=0.05)
    counted = []

    async def occupancy(carpark_id, reported):
        counted.append(reported)
        return 42

    fanout._occupancy = occupancy
    socket = Socket()
    await fanout.subscribe(1, "LHR-T5", socket)
    try:
        events = [{"kind": "read", "data": {"id": n}} for n in (1, 2, 3)]
        events.append({"kind": "occupancy", "data": {"carpark": "LHR-T5", "occupancy": None}})
        await layer.group_send(carpark_group(1), {"type": "carpark.events", "events": events})
        for _ in range(50):
            if socket.frames:
                break
            await asyncio.sleep(0.02)
    finally:
        for task in list(fanout.tasks):
            task.cancel()
    assert len(socket.frames) == 1
    assert [r["id"] for r in socket.frames[0]["reads"]] == [1, 2, 3]
    assert socket.frames[0]["occupancy"] == 42 and counted == [None]


async def test_a_big_flush_is_paced_in_slices_and_the_next_never_overtakes_it():
    from consumers import fanout as module

    fanout = CarparkFanout(layer=None, flush_s=0.0)
    fanout.codes[1] = "LHR-T5"
    order = []

    class Recorder(Socket):
        def __init__(self, n):
            super().__init__()
            self.n = n

        async def deliver(self, text):
            order.append((json.loads(text)["reads"][0]["id"], self.n, asyncio.get_running_loop().time()))

    for n in range(module.SLICE * 5):
        fanout.subscribers[1].add(Recorder(n))
    fanout.add(1, "read", {"id": 1})
    await asyncio.sleep(0)  # the first flush has started writing
    fanout.last_flush[1] = 0.0  # due at once: it must still wait for the first to finish
    fanout.add(1, "read", {"id": 2})
    for _ in range(100):
        if len(order) == 2 * module.SLICE * 5:
            break
        await asyncio.sleep(0.02)
    assert [flush for flush, _, _ in order] == [1] * (module.SLICE * 5) + [2] * (module.SLICE * 5)
    first = [t for flush, _, t in order if flush == 1]
    spread = min(module.SPREAD_S, fanout.interval(1) / 2) * 4 / 5  # 5 slices: 4 pauses
    assert first[-1] - first[0] >= spread / 2  # paced, not written in one burst


async def test_a_flush_waiting_for_its_recount_is_not_overtaken_by_the_next():
    """A visit's flush recounts the occupancy (a database query); an event after it (the lane's controller going
    offline) must not reach the screen first, or the older delta would put the lane back online."""
    fanout = CarparkFanout(layer=None, flush_s=0.0)
    fanout.codes[1] = "LHR-T5"
    socket = Socket()
    fanout.subscribers[1].add(socket)
    counted = asyncio.Event()

    async def slow_occupancy(carpark_id, reported):
        await counted.wait()
        return 7

    fanout._occupancy = slow_occupancy
    fanout.add(1, "visit", {"id": 1})
    fanout.add(1, "device", {"device": "d1", "online": True})
    await asyncio.sleep(0)  # the first flush is counting
    fanout.last_flush[1] = 0.0
    fanout.add(1, "device", {"device": "d1", "online": False})
    await asyncio.sleep(0.05)
    counted.set()
    for _ in range(50):
        if len(socket.frames) == 2:
            break
        await asyncio.sleep(0.01)
    assert [frame["devices"] for frame in socket.frames] == [
        [{"device": "d1", "online": True}],
        [{"device": "d1", "online": False}],
    ]
    assert socket.frames[0]["occupancy"] == 7


async def test_snapshots_asked_together_go_out_one_after_the_other_each_followed_by_what_it_held(monkeypatch):
    """Connect, the page's resync and the fan-out's may ask for a snapshot at once. The second is asked for only
    once the first and the deltas it held are out: sent after them, and computed after them."""
    from consumers import dashboard

    socket = dashboard.DashboardConsumer()
    socket.carpark_ids, socket.held, socket.snapshotting = [1], None, asyncio.Lock()
    sent, asked, ready = [], [], [asyncio.Event(), asyncio.Event()]

    async def send(text_data):
        sent.append(json.loads(text_data)["n"])

    class Snapshots:
        async def get(self, carpark_ids):
            n = len(asked)
            asked.append(list(sent))  # what the socket had sent when this snapshot was asked for
            await ready[n].wait()
            return json.dumps({"n": f"snapshot {n}"})

    socket.send = send
    monkeypatch.setattr(dashboard, "snapshots", lambda compute: Snapshots())
    first = asyncio.create_task(socket.send_snapshot())
    second = asyncio.create_task(socket.send_snapshot())
    await asyncio.sleep(0.01)
    await socket.deliver(json.dumps({"n": "delta a"}))  # while the first loads: held
    ready[0].set()
    await asyncio.sleep(0.01)
    await socket.deliver(json.dumps({"n": "delta b"}))  # while the second loads: held
    ready[1].set()
    await asyncio.gather(first, second)
    await socket.deliver(json.dumps({"n": "delta c"}))
    assert sent == ["snapshot 0", "delta a", "snapshot 1", "delta b", "delta c"]
    assert asked == [[], ["snapshot 0", "delta a"]]
