"""Plate-read decisions on the server's event loop (PostgreSQL): the common reads decided in two round trips on an
async psycopg connection of the loop's own (apps.core.aiodb), with no thread hand-off.

  1. BEGIN; lock the vehicle and read the lane's policies (services.lane_statement); read every fact
     (selectors.CONTEXT_SQL), computed with the lane's policies as last seen;
  2. the decision's writes in one statement (services.Decided.statement); COMMIT. The decision is returned (and
     sent) only once the COMMIT's reply is in, so a decision the controller gets is never lost.
Each round trip is one message of prepared statements (apps.core.aiodb.run).

The decision itself is the thread path's (services.plate_read_decided, rules): only where the statements run
differs. The facts are read in the same round trip as the lock, with the policies of the lane's previous read; when
the lane's row says they have changed (or on this process's first read of the lane) they are read again, under the
same lock, with the current ones. What this path does not write, it hands back (None), rolled back, for the full
service on a decision thread (services.plate_read_decide): stale reads, visits superseded or held, overstays, out
of order reads, an unknown lane, a read_id raced by another connection. Events leave through apps.core.events
after the commit, as from the thread path.

Why: at 100 reads/s the thread path spent more time handing the read to a decision thread and the frame back,
and competing with the loop for the GIL, than in PostgreSQL (bench/gateway.py; docs/architecture.md).
"""

import psycopg
from django.conf import settings
from django.utils import timezone

from apps.access import selectors, services
from apps.carparks.models import Lane
from apps.core import aiodb, events

POOL_NAME = "decisions"


def on_the_loop() -> bool:
    return settings.DECISIONS_ON_LOOP and aiodb.on_postgresql()


async def plate_read_decide(
    *,
    device_id: str,
    read_id: str,
    lane_id: int | None,
    plate: str,
    score: float,
    captured_at,
    candidates: list | None = None,
    region: str = "",
    vehicle: dict | None = None,
    retransmit: bool = False,
    local_action: str = "",
) -> dict | None:
    """services.plate_read_decide on the loop: the `decision` frame once committed, or None when this read must be
    decided by the full service (on a thread). Django's DatabaseError when the database cannot be reached."""
    if lane_id is None or not on_the_loop():
        return None
    now = timezone.now()
    read = services.plate_read_of(plate=plate, score=score, captured_at=captured_at, candidates=candidates)
    try:
        async with _pools.get().connection() as conn:
            lane, context = await _locked_with_facts(conn, device_id, read_id, lane_id, read, now)
            if lane is None:
                await conn.rollback()
                return None  # no such lane (any more): the full service says so
            if context.duplicate is not None:
                await conn.rollback()
                return context.duplicate | {"duplicate": True}
            decided = services.plate_read_decided(
                lane=lane, context=context, device_id=device_id, read_id=read_id, plate=plate, read=read, now=now,
                candidates=candidates, region=region, vehicle=vehicle, retransmit=retransmit,
                local_action=local_action, with_command=True,
            )  # fmt: skip
            if not decided.in_one_statement():
                await conn.rollback()
                return None
            sql, params = decided.statement()
            [written] = await aiodb.run(conn, aiodb.statement(sql)(params), "COMMIT")
    except psycopg.IntegrityError:
        return None  # the same read decided meanwhile on another connection: the full service answers the duplicate
    except psycopg.Error as exc:
        raise aiodb.django_error(exc) from exc
    for kind, data in decided.written(written[0]):
        events.publish_committed_to_carpark(carpark_id=lane.carpark_id, kind=kind, data=data)
    return decided.frame


async def _locked_with_facts(conn, device_id, read_id, lane_id, read, now):
    """(lane, context) under the vehicle's lock in an open transaction; (None, None) for an unknown lane."""
    seen = services.lane_last_seen(lane_id)

    def facts(lane: Lane) -> tuple:
        params = selectors.decision_context_params(
            device_id=device_id, read_id=read_id, lane_id=lane_id, carpark_id=lane.carpark_id, read=read,
            policy=services.lane_policy(lane), entry=lane.direction == Lane.Direction.ENTRY, now=now,
        )  # fmt: skip
        return aiodb.statement(selectors.CONTEXT_SQL)(params)

    locked = aiodb.statement(services.lane_statement()[0])([read.key, lane_id])
    if seen is not None:
        rows, found = await aiodb.run(conn, "BEGIN", locked, facts(seen))
    else:
        [rows], found = await aiodb.run(conn, "BEGIN", locked), None
    if not rows:
        return None, None
    lane = services.lane_of_row(lane_id, rows[0][1:])
    if lane is not seen:  # first read of this lane here, or its policies changed: the facts again, same lock
        [found] = await aiodb.run(conn, facts(lane))
    return lane, selectors.decision_context_of_rows(found, read=read, policy=services.lane_policy(lane))


async def close() -> None:
    """Close this process's decision pool (serve's shutdown), if it was opened on the running loop."""
    await _pools.close()


# Two kept open, more opened under load: the pool hands out its idle connections in turn, so a few warm backends
# answer a steady trickle faster than many cold ones, and a burst gets more transactions in flight.
_pools = aiodb.PerLoop(POOL_NAME, min_size=2, max_size=settings.DECISION_CONNECTIONS)
