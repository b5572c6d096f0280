"""A dashboard socket's `resync` frames against a real `serve`: each costs a snapshot's queries, so a socket gets at
most one snapshot per RESYNC_EVERY_S however many it sends, and an ask is never dropped, only answered later."""

import asyncio
import json
import math

import pytest

from consumers.dashboard import RESYNC_EVERY_S
from tests.dashboard.conftest import dashboard_socket, login, next_frame

pytestmark = pytest.mark.django_db(transaction=True)

FLOOD = 1000


def is_snapshot(frame: dict) -> bool:
    return frame["type"] == "snapshot"


async def test_a_flood_of_resyncs_costs_a_few_snapshots_and_a_later_resync_is_answered_at_once(parkgate, staff):
    from asgiref.sync import sync_to_async

    await sync_to_async(staff)("mo", "operator", "MAN-T2")
    client = await sync_to_async(login)(parkgate, "mo")
    ws = await dashboard_socket(parkgate, client)
    assert is_snapshot(await next_frame(ws))
    loop = asyncio.get_running_loop()

    started = loop.time()
    for _ in range(FLOOD):
        await ws.send(json.dumps({"type": "resync"}))
    flood_s = loop.time() - started

    # The flood's asks are answered: at least one snapshot comes (waited for, not slept on).
    snapshots = [await next_frame(ws, timeout=30, match=is_snapshot)]
    # Then no more than one per RESYNC_EVERY_S of the flood (plus the one held for the end of the last interval).
    # Asserting that nothing else comes needs a quiet interval: one throttle interval and a margin.
    while True:
        try:
            snapshots.append(await next_frame(ws, timeout=RESYNC_EVERY_S + 1, match=is_snapshot))
        except TimeoutError:
            break
        assert len(snapshots) <= math.ceil(flood_s / RESYNC_EVERY_S) + 1, f"{len(snapshots)} snapshots for {FLOOD}"

    # After that quiet moment, a legitimate resync gets its snapshot straight away, not at the next interval.
    asked = loop.time()
    await ws.send(json.dumps({"type": "resync"}))
    assert is_snapshot(await next_frame(ws, timeout=RESYNC_EVERY_S, match=is_snapshot))
    assert loop.time() - asked < RESYNC_EVERY_S
    await ws.close()
