"""What a decision reads, under the vehicle's lock: the lane with its car park's policies (lane_statement) and every
fact the rules need (selectors.CONTEXT_SQL), both prepared statements sent for a whole batch in one round trip."""

import functools
from datetime import datetime

from django.db import DEFAULT_DB_ALIAS, connection

from apps.access import rules
from apps.carparks.models import CarPark, Lane
from apps.core import plates


def plate_read_of(*, plate: str, score: float, captured_at: datetime, candidates: list | None) -> rules.Read:
    return rules.Read(
        plate=plates.normalise(plate)[:32],
        key=plates.lookalike_key(plate)[:32],
        score=score,
        captured_at=captured_at,
        candidates=plates.normal_candidates(candidates),
    )


@functools.cache
def lane_statement() -> tuple[str, list[str], list[str]]:
    """SELECT lane + car park by lane id, locking the vehicle (look-alike key) first: the decision's first statement.
    Parameters: the look-alike key, the lane's id."""
    lane_fields, carpark_fields = Lane._meta.concrete_fields, CarPark._meta.concrete_fields
    columns = [f"l.{connection.ops.quote_name(f.column)}" for f in lane_fields]
    columns += [f"c.{connection.ops.quote_name(f.column)}" for f in carpark_fields]
    sql = (
        f"SELECT pg_advisory_xact_lock(l.carpark_id::integer, hashtext(%s)), {', '.join(columns)} "  # noqa: S608  (model metadata only)
        "FROM carparks_lane l JOIN carparks_carpark c ON c.id = l.carpark_id WHERE l.id = %s"
    )
    return sql, [f.attname for f in lane_fields], [f.attname for f in carpark_fields]


def lane_of_row(lane_id: int, values: tuple) -> Lane:
    """The Lane (with its CarPark) of lane_statement's row, without the lock's column. The same object as last time
    while the row is unchanged (lanes and car parks are only read here), so no new model instances per decision."""
    cached = _lanes.get(lane_id)
    if cached is not None and cached[0] == values:
        return cached[1]
    _sql, lane_names, carpark_names = lane_statement()
    lane = Lane.from_db(DEFAULT_DB_ALIAS, lane_names, values[: len(lane_names)])
    lane.carpark = CarPark.from_db(DEFAULT_DB_ALIAS, carpark_names, values[len(lane_names) :])
    _lanes[lane_id] = (values, lane)
    return lane


def lane_last_seen(lane_id: int) -> Lane | None:
    """The Lane lane_of_row last returned for this id (its policies may have changed since)."""
    cached = _lanes.get(lane_id)
    return cached[1] if cached is not None else None


_lanes: dict[int, tuple[tuple, Lane]] = {}  # lane id -> (its row as last read, the Lane with its CarPark)
