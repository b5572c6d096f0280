"""Lane controller writes: enrolment, revocation, connection state, plate-read decisions, visits, barrier commands,
alerts and the offline allow-list (device-protocol.md). Every function owns its transaction."""

import functools
import hashlib
import json
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, models, transaction
from django.db.models import Q
from django.db.models.expressions import RawSQL
from django.utils import timezone
from psycopg.types.json import Jsonb

from apps.access import clock, rules, selectors
from apps.access.models import (
    Alert,
    AllowlistState,
    BarrierCommand,
    BlockedPlate,
    Device,
    EnrolmentCode,
    Permit,
    PlateRead,
    Visit,
)
from apps.access.signals import visit_overstayed
from apps.access.tokens import hash_secret, new_secret
from apps.bookings import services as booking_services
from apps.bookings.models import Booking
from apps.carparks.models import CarPark, Lane
from apps.core import events, plates
from apps.core.services import audit_log_record
from apps.core.sql import prepared_cursor

log = logging.getLogger(__name__)
ENROLMENT_CODE_TTL = timedelta(hours=24)
COMMAND_TTL = timedelta(seconds=10)
OFFLINE_AFTER = timedelta(seconds=60)
NO_SHOW_EVENTS_WITHIN = timedelta(days=2)  # a local day, in any time zone, is inside this
LAST_SEEN_EVERY = timedelta(seconds=15)  # an unchanged heartbeat rewrites last_seen_at only this often

# device_heartbeat's answers: the connection carries on, or why it must close
ACTIVE, REVOKED, REPLACED = "active", "revoked", "replaced"


class InvalidEnrolmentCode(Exception):
    pass


class UnknownLane(Exception):
    pass


class DeviceRevoked(Exception):
    """The device was revoked: it never gets a token again (a replacement is a new device)."""


class LaneOffline(Exception):
    """A manual command to a lane whose controller is offline: it fails at once (device-protocol.md 4)."""


class UnknownCommand(Exception):
    pass


@dataclass(frozen=True)
class EnrolmentCodeIssued:
    """A one-time enrolment code, in clear: shown once to staff, never stored or logged (only its hash is kept)."""

    device_id: str
    code: str
    expires_at: datetime


@dataclass(frozen=True)
class Enrolled:
    device_id: str
    token: str
    carpark: str
    lanes: list[str]


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with `Z`, as the protocol recommends."""
    if value is None:
        return None
    return value.astimezone(timezone.UTC).isoformat().replace("+00:00", "Z")


# --- Devices ---------------------------------------------------------------------------------------------------


def device_create(
    *, carpark_code: str, lane_codes: list[str], name: str = "", settings: dict | None = None, actor=None
) -> tuple[Device, EnrolmentCodeIssued]:
    """Create a device for lanes of a car park, with its vendor mapping (`settings`, device-protocol.md 7); returns it
    with its one-time enrolment code (shown once)."""
    carpark = CarPark.objects.filter(code=carpark_code).first()
    if carpark is None:
        raise CarPark.DoesNotExist(f"unknown car park {carpark_code!r}")
    lanes = _lanes_of(carpark, lane_codes)
    with transaction.atomic():
        device = Device.objects.create(carpark=carpark, name=name, settings=settings or {})
        device.lanes.set(lanes)
        _audit_device("device.create", device, actor)
        issued = device_enrolment_code_issue(device_id=str(device.id), actor=actor)
    return device, issued


def _lanes_of(carpark: CarPark, lane_codes: list[str]) -> list[Lane]:
    lanes = list(Lane.objects.filter(carpark=carpark, code__in=lane_codes))
    missing = sorted(set(lane_codes) - {lane.code for lane in lanes})
    if missing:
        raise Lane.DoesNotExist(f"unknown lane(s) {', '.join(missing)} at {carpark.code}")
    return lanes


def device_enrolment_code_issue(*, device_id: str, actor=None) -> EnrolmentCodeIssued:
    """A new one-time enrolment code (valid 24 h) for an unrevoked device: the first was lost or expired, or the
    controller is replaced (enrolling again rotates the token, device-protocol.md 1.3). The device's earlier unused
    codes stop working. Raises DeviceRevoked for a revoked device."""
    code = new_secret()
    with transaction.atomic():
        device = Device.objects.select_for_update().select_related("carpark").get(pk=device_id)
        if device.revoked_at is not None:
            raise DeviceRevoked(str(device.id))
        now = timezone.now()
        device.enrolment_codes.filter(used_at__isnull=True, expires_at__gt=now).update(expires_at=now)
        enrolment = EnrolmentCode.objects.create(
            device=device, code_hash=hash_secret(code), expires_at=now + ENROLMENT_CODE_TTL
        )
        _audit_device("device.enrolment_code", device, actor, data={"expires_at": iso(enrolment.expires_at)})
    return EnrolmentCodeIssued(device_id=str(device.id), code=code, expires_at=enrolment.expires_at)


def device_update(
    *, device_id: str, name: str, lane_codes: list[str], settings: dict | None = None, actor=None
) -> Device:
    """Staff change a device's name, lanes (of its own car park) or vendor mapping. Audited when something changed,
    and then its live connection gets a new `welcome` with its lanes (device_settings_changed)."""
    with transaction.atomic():
        device = Device.objects.select_for_update().select_related("carpark").get(pk=device_id)
        lanes = _lanes_of(device.carpark, lane_codes)
        before = (device.name, device.settings, sorted(device.lanes.values_list("code", flat=True)))
        after = (name, settings or {}, sorted(lane.code for lane in lanes))
        if before == after:
            return device
        device.name, device.settings = name, settings or {}
        device.save(update_fields=["name", "settings"])
        device.lanes.set(lanes)
        _audit_device("device.update", device, actor, data={"name": name, "lanes": after[2], "settings": after[1]})
        device_settings_changed(device_id=str(device.id))
    return device


def device_enrol(*, code: str, serial: str = "", model: str = "") -> Enrolled:
    """Exchange a one-time enrolment code for the device's token (device-protocol.md 1.2)."""
    token = new_secret()
    with transaction.atomic():
        enrolment = (
            EnrolmentCode.objects.select_for_update()
            .select_related("device__carpark")
            .filter(code_hash=hash_secret(code or ""), used_at__isnull=True, expires_at__gt=timezone.now())
            .first()
        )
        if enrolment is None or enrolment.device.revoked_at is not None:
            raise InvalidEnrolmentCode
        enrolment.used_at = timezone.now()
        enrolment.save(update_fields=["used_at"])
        device = enrolment.device
        if device.token_hash:
            # Enrolling again rotates the token (spec 1.3): a connection on the old one closes, wherever it is held.
            events.publish_to_device(device_id=str(device.id), kind="token_rotated", data={})
        device.token_hash, device.serial, device.model = hash_secret(token), serial[:100], model[:100]
        device.enrolled_at = timezone.now()
        device.save(update_fields=["token_hash", "serial", "model", "enrolled_at"])
        lanes = list(device.lanes.order_by("code").values_list("code", flat=True))
    return Enrolled(device_id=str(device.id), token=token, carpark=device.carpark.code, lanes=lanes)


def device_revoke(*, device_id: str, actor=None) -> Device:
    """Revoke a device: its token stops working and its live connection, wherever it is held, closes with 4401."""
    with transaction.atomic():
        device = Device.objects.select_for_update().get(pk=device_id)
        if device.revoked_at is None:
            device.revoked_at = timezone.now()
            device.online = False
            device.save(update_fields=["revoked_at", "online"])
            _audit_device("device.revoke", device, actor)
            _publish_device(device)
        events.publish_to_device(device_id=str(device.id), kind="revoked", data={})
    return device


def _audit_device(action: str, device: Device, actor, data: dict | None = None) -> None:
    """A device's audit entry: by the staff member, or else from the command line (enrol_device, revoke_device)."""
    audit_log_record(
        action=action,
        actor=actor,
        actor_label="" if actor else "command line",
        obj=device,
        carpark=device.carpark,
        data=data,
    )


def _publish_device(device: Device) -> None:
    events.publish_to_carpark(carpark_id=device.carpark_id, kind="device", data=selectors.device_event_data(device))


def device_connected(*, device_id: str, connection_id: str, firmware: str | None = None) -> None:
    """A `hello` on a live connection: the device is online, held by `connection_id`."""
    with transaction.atomic():
        device = Device.objects.select_for_update().get(pk=device_id)
        device.online, device.connection_id, device.last_seen_at = True, connection_id, timezone.now()
        fields = ["online", "connection_id", "last_seen_at"]
        if firmware is not None:
            device.firmware = firmware[:50]
            fields.append("firmware")
        device.save(update_fields=fields)
        _publish_device(device)


def device_disconnected(*, device_id: str, connection_id: str) -> bool:
    """The connection `connection_id` closed or fell silent: offline, unless a newer connection holds the device."""
    with transaction.atomic():
        device = Device.objects.select_for_update().filter(pk=device_id, connection_id=connection_id).first()
        if device is None or not device.online:
            return False
        device.online = False
        device.save(update_fields=["online"])
        _publish_device(device)
    return True


def device_heartbeat(*, device_id: str, connection_id: str, token_hash: str, barriers: dict[str, str]) -> str:
    """A heartbeat on a connection opened with the token of `token_hash`: record the barrier states and that the
    device is alive (ACTIVE), unless it has been revoked (REVOKED) or enrolled again since, which replaced its token
    (REPLACED). Nothing is recorded then: the connection must close."""
    with transaction.atomic():
        # FOR NO KEY UPDATE: the device's reads being decided meanwhile (their foreign key's KEY SHARE) do not wait
        device = Device.objects.select_for_update(no_key=True).filter(pk=device_id).first()
        if device is None or device.revoked_at is not None:
            return REVOKED
        if device.token_hash != token_hash:
            return REPLACED
        changed = not device.online or device.connection_id != connection_id or device.barriers != barriers
        now = timezone.now()
        if not changed and device.last_seen_at and now - device.last_seen_at < LAST_SEEN_EVERY:
            return ACTIVE  # nothing new: the row is not written again
        device.online, device.connection_id, device.last_seen_at = True, connection_id, now
        device.barriers = barriers
        device.save(update_fields=["online", "connection_id", "last_seen_at", "barriers"])
        if changed:
            _publish_device(device)
    return ACTIVE


def devices_sweep_offline(*, now: datetime | None = None) -> int:
    """Devices marked online whose process died without saying so (no heartbeat for 60 s + slack): offline."""
    cutoff = (now or timezone.now()) - OFFLINE_AFTER - timedelta(seconds=30)
    count = 0
    with transaction.atomic():
        for device in Device.objects.select_for_update(skip_locked=True).filter(online=True, last_seen_at__lt=cutoff):
            device.online = False
            device.save(update_fields=["online"])
            _publish_device(device)
            count += 1
    return count


# --- Plate reads -----------------------------------------------------------------------------------------------


def policy_of(carpark: CarPark) -> rules.Policy:
    return rules.Policy(
        min_score=float(carpark.min_score),
        repeat_window_s=carpark.repeat_window_s,
        stale_after_s=carpark.stale_after_s,
        early_arrival_min=carpark.early_arrival_min,
        grace_min=carpark.grace_min,
        overstay_policy=carpark.overstay_policy,
        anti_passback=carpark.anti_passback,
    )


def plate_read_decide(
    *,
    device_id: str,
    read_id: str,
    lane_code: str,
    plate: str,
    score: float,
    captured_at: datetime,
    lane_id: int | None = None,
    candidates: list | None = None,
    region: str = "",
    vehicle: dict | None = None,
    retransmit: bool = False,
    local_action: str = "",
    with_command: bool = True,
) -> dict:
    """Record a plate read, decide what the barrier does, apply it to visits; all in one transaction.

    Returns the `decision` frame. The caller sends it only after this returns (i.e. after commit), so a decision
    the controller receives is never lost; a resent read gets it again with `duplicate: true`.
    """
    try:
        return _decide(
            device_id=device_id,
            read_id=read_id,
            lane_code=lane_code,
            lane_id=lane_id,
            plate=plate,
            score=score,
            captured_at=captured_at,
            candidates=candidates,
            region=region,
            vehicle=vehicle,
            retransmit=retransmit,
            local_action=local_action,
            with_command=with_command,
        )
    except IntegrityError:
        # The same read_id decided meanwhile on another connection of this device (a reconnect raced the old one).
        stored = PlateRead.objects.filter(device_id=device_id, read_id=read_id).values_list("decision", flat=True)
        decision = stored.first()
        if decision is None:
            raise
        return decision | {"duplicate": True}


def _lane_locked(device_id: str, lane_code: str, lane_id: int | None, key: str) -> Lane:
    """The lane with its car park's current policies, taking the vehicle's lock in the same round trip."""
    if lane_id:
        return _lane_locked_prepared(lane_id, key)
    # Serialise decisions about one vehicle (by look-alike key) across threads and processes.
    lock = RawSQL("pg_advisory_xact_lock(carparks_lane.carpark_id::integer, hashtext(%s))::text", [key])
    lanes = Lane.objects.select_related("carpark").annotate(_locked=lock)
    lane = lanes.filter(pk=lane_id).first() if lane_id else lanes.filter(devices__id=device_id, code=lane_code).first()
    if lane is None:
        raise UnknownLane(lane_code)
    return lane


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


def _lane_locked_prepared(lane_id: int, key: str) -> Lane:
    with prepared_cursor() as cursor:
        cursor.execute(lane_statement()[0], [key, lane_id], prepare=True)
        row = cursor.fetchone()
    if row is None:
        raise UnknownLane(str(lane_id))
    return lane_of_row(lane_id, row[1:])


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


def plate_read_of(*, plate: str, score: float, captured_at: datetime, candidates: list | None) -> rules.Read:
    return rules.Read(
        plate=plates.normalise(plate)[:32],
        key=plates.lookalike_key(plate)[:32],
        score=score,
        captured_at=captured_at,
        candidates=plates.normal_candidates(candidates),
    )


def _decide(*, device_id, read_id, lane_code, lane_id, plate, score, captured_at, candidates, region, vehicle,
            retransmit, local_action, with_command) -> dict:  # fmt: skip
    now = timezone.now()
    read = plate_read_of(plate=plate, score=score, captured_at=captured_at, candidates=candidates)
    with transaction.atomic():
        lane = _lane_locked(device_id, lane_code, lane_id, read.key)
        read, clock_offset = clock.on_server_clock(
            read, policy=lane_policy(lane), now=now, retransmit=retransmit, local_action=local_action
        )
        context = selectors.decision_context(
            device_id=device_id, read_id=read_id, lane_id=lane.id, carpark_id=lane.carpark_id, read=read,
            policy=lane_policy(lane), entry=lane.direction == Lane.Direction.ENTRY, now=now,
        )  # fmt: skip
        if context.duplicate is not None:
            return context.duplicate | {"duplicate": True}
        decided = plate_read_decided(
            lane=lane, context=context, device_id=device_id, read_id=read_id, plate=plate, read=read, now=now,
            candidates=candidates, region=region, vehicle=vehicle, retransmit=retransmit, local_action=local_action,
            with_command=with_command,
        )  # fmt: skip
        if clock_offset is not None:  # the device's clock is wrong: decided at receipt, staff told
            decided.read_row["clock_offset_s"] = clock_offset
            clock.device_clock_record(
                device_id=device_id, offset_s=clock_offset, stale_after_s=lane_policy(lane).stale_after_s
            )
        if decided.in_one_statement():
            sql, params = decided.statement()
            with prepared_cursor() as cursor:  # a few shapes, each prepared once per connection
                cursor.execute(sql, params, prepare=True)
                written = decided.written(cursor.fetchone())
            for kind, data in written:
                events.publish_to_carpark(carpark_id=lane.carpark_id, kind=kind, data=data)
            return decided.frame
        carpark, outcome = lane.carpark, decided.outcome
        row = PlateRead(lane=lane, carpark=carpark, **decided.read_row)
        row.save(force_insert=True)
        if decided.command_row is not None:
            BarrierCommand(lane=lane, read=row, **decided.command_row).save(force_insert=True)
        delta = _apply_visits(
            carpark, lane, row, outcome, stale=decided.stale, entry=decided.entry, local_action=local_action,
            simple=decided.simple,
        )  # fmt: skip
        if decided.alert:
            _alert_raise(
                carpark=carpark, lane=lane, plate=read.plate, reason=outcome.reason, read=row,
                policy=lane_policy(lane), checked=True,
            )  # fmt: skip
        _publish_read(carpark, lane, row)
        if delta is not None:
            _publish_occupancy_changed(carpark)
        return row.decision


def lane_policy(lane: Lane) -> rules.Policy:
    """The lane's car park's policies (kept on the Lane object, which lane_of_row reuses while its row is unchanged)."""
    policy = lane.__dict__.get("_policy")
    if policy is None:
        policy = lane.__dict__["_policy"] = policy_of(lane.carpark)
    return policy


def plate_read_decided(*, lane: Lane, context: selectors.DecisionContext, device_id: str, read_id: str, plate: str,
                       read: rules.Read, now: datetime, candidates: list | None, region: str, vehicle: dict | None,
                       retransmit: bool, local_action: str, with_command: bool) -> "Decided":  # fmt: skip
    """The decision about a read (not a duplicate) and the rows it writes (their fields by attname), from the facts
    read under its lock."""
    policy = lane_policy(lane)
    entry = lane.direction == Lane.Direction.ENTRY
    stale = read.captured_at < now - timedelta(seconds=policy.stale_after_s)
    if stale:
        outcome = _stale_outcome(read, policy, context.facts, entry, local_action)
    elif context.repeat is not None:
        outcome = _repeat_outcome(context.repeat)
    else:
        outcome = (
            rules.decide_entry(read, policy, context.facts) if entry else rules.decide_exit(read, policy, context.facts)
        )
    command = None
    if outcome.action == "open" and with_command:
        command = {
            "command_id": new_command_id(),
            "device_id": device_id,
            "reason": outcome.reason,
            "expires_at": now + COMMAND_TTL,
        }
    frame = decision_frame(read_id, outcome, command)
    row = {
        "device_id": device_id,
        "read_id": read_id,
        "plate_raw": plate[:32],
        "plate": read.plate,
        "lookalike_key": read.key,
        "score": read.score,
        "candidates": candidates or [],
        "region": region[:16],
        "vehicle": vehicle or {},
        "retransmit": retransmit,
        "local_action": local_action,
        "captured_at": read.captured_at,
        "action": outcome.action,
        "reason": outcome.reason,
        "match": outcome.match or "",
        "booking_id": _booking_id(outcome),
        "permit_id": outcome.permit_id,
        "decision": frame,
        "unpaired_exit": not stale and not entry and outcome.reason == "no_visit",
    }
    alert = outcome.alert and not stale and not context.alerted_recently
    return Decided(
        lane, frame, row, command, outcome, alert=alert, stale=stale, entry=entry, simple=not context.visits_around,
        now=now,
    )  # fmt: skip


@dataclass
class Decided:
    """A decided plate read and what it writes. The common live decisions are written in ONE statement on
    PostgreSQL (`statement`, then `written` with its result row), by the decision thread or on the loop
    (apps.access.fastpath), without model instances; the rarer ones go through the ORM (visits superseded or held,
    stale reads, overstays)."""

    lane: Lane
    frame: dict  # the `decision` frame
    read_row: dict  # the PlateRead's fields by attname, but its lane and car park
    command_row: dict | None  # the BarrierCommand's, but its lane and read
    outcome: rules.Outcome
    alert: bool
    stale: bool
    entry: bool
    simple: bool  # no visit or unpaired exit of this vehicle after the read (not out of order)
    now: datetime  # when it was decided: the rows' auto_now(_add) fields

    def in_one_statement(self) -> bool:
        outcome = self.outcome
        if self.stale or outcome.superseded_visit or outcome.hold_visit:
            return False
        if outcome.open_visit and (not self.simple or outcome.vehicle_plate):
            return False  # paired by captured_at, or under a candidate's plate (its key's visits were not read)
        return not (outcome.close_visit is not None and outcome.overstay_minutes)

    def statement(self) -> tuple[str, list]:
        """Insert the read, its command, the visit it opens or close the visit it ends, update the booking and raise
        the alert, in ONE statement (data-modifying CTEs), prepared once per shape and connection."""
        lane, row, outcome = self.lane, self.read_row, self.outcome
        ids = {"carpark_id": lane.carpark_id}
        now = self.now
        parts, params = [], []

        def cte(name: str, sql: str, values: list) -> None:
            parts.append(f"{name} AS ({sql})")
            params.extend(values)

        cte("r", *_insert_sql(PlateRead, row | ids | {"lane_id": lane.id}, now=now, returning="id, received_at"))
        if self.command_row is not None:
            cte("c", *_insert_sql(BarrierCommand, self.command_row | {"lane_id": lane.id}, now=now, read_fk="read_id"))
        if outcome.open_visit:
            visit = {
                "plate": row["plate"], "lookalike_key": row["lookalike_key"], "entry_lane_id": lane.id,
                "entered_at": row["captured_at"], "booking_id": outcome.booking_id, "permit_id": outcome.permit_id,
            }  # fmt: skip
            cte("v", *_insert_sql(Visit, visit | ids, now=now, read_fk="entry_read_id"))
            booking_id, status, from_statuses = outcome.booking_id, Booking.Status.ARRIVED, [Booking.Status.CONFIRMED]
        elif outcome.close_visit is not None:
            cte("x", "UPDATE access_visit SET exit_read_id = r.id, exit_lane_id = %s, exited_at = %s, held_at = NULL "
                "FROM r WHERE access_visit.id = %s AND access_visit.exited_at IS NULL",
                [lane.id, row["captured_at"], outcome.close_visit.id])  # fmt: skip
            booking_id, status = outcome.close_visit.booking_id, Booking.Status.DEPARTED
            from_statuses = [Booking.Status.CONFIRMED, Booking.Status.ARRIVED]
        else:
            booking_id = status = from_statuses = None
        if booking_id:
            cte("b", "UPDATE bookings_booking SET status = %s, updated_at = %s WHERE id = %s AND status = ANY(%s)",
                [status, now, booking_id, from_statuses])  # fmt: skip
        if self.alert:
            alert = {"lane_id": lane.id, "plate": row["plate"], "reason": row["reason"]}
            cte("a", *_insert_sql(Alert, alert | ids, now=now, read_fk="read_id"))
        returning = ", ".join(
            ["r.id", "r.received_at", "(SELECT id FROM v)" if outcome.open_visit else "NULL",
             "(SELECT id FROM a)" if self.alert else "NULL"]
        )  # fmt: skip
        return f"WITH {', '.join(parts)} SELECT {returning} FROM r", params  # noqa: S608  (see _insert_sql)

    def written(self, result: tuple) -> list[tuple[str, dict]]:
        """Takes the statement's result row; the car park events to publish once committed, in order."""
        carpark, lane, row, outcome = self.lane.carpark, self.lane, self.read_row, self.outcome
        read_pk, _received_at, visit_id, alert_id = result
        published = []
        if outcome.open_visit:
            data = {
                "id": visit_id, "carpark": carpark.code, "plate": row["plate"], "entered_at": iso(row["captured_at"]),
                "exited_at": None, "booking": outcome.booking_reference,
            }  # fmt: skip
            published.append(("visit", data))
        elif outcome.close_visit is not None:
            fact = outcome.close_visit
            data = {
                "id": fact.id, "carpark": carpark.code, "plate": fact.plate, "entered_at": iso(fact.entered_at),
                "exited_at": iso(row["captured_at"]), "booking": fact.booking_reference,
            }  # fmt: skip
            published.append(("visit", data))
        if self.alert:
            alert = Alert(
                id=alert_id, carpark=carpark, lane=lane, plate=row["plate"], reason=row["reason"],
                created_at=self.now,
            )  # fmt: skip
            published.append(("alert", selectors.alert_event_data(alert)))
        published.append(("read", _read_event_data(carpark, lane, read_pk, row)))
        if outcome.open_visit or outcome.close_visit is not None:
            published.append(("occupancy", _occupancy_changed_data(carpark)))
        return published


def _insert_sql(model, values: dict, *, now: datetime, read_fk: str | None = None, returning: str = "id"):
    """An INSERT of a `model` row as an ORM `save()` would write it, from its fields' values by attname (no model
    instance): omitted fields take their defaults, auto_now(_add) ones `now`; `read_fk` is set to the read inserted
    by the CTE `r`. The row is ONE jsonb parameter read by jsonb_populate_record, which types every value by its
    column: a few parameters to send instead of one per column (psycopg's per-parameter work was a fifth of the
    decision's CPU, and it stops caching the parsed statement beyond 50). Returns (statement, parameters)."""
    sql, columns = _insert_statement(model, read_fk, returning)
    record = {}
    for column, attname, auto_now, field in columns:
        if auto_now:
            record[column] = now
        else:
            record[column] = values[attname] if attname in values else field.get_default()
    return sql, [Jsonb(record, dumps=_record_dumps)]


def _jsonable(value):
    if isinstance(value, datetime):
        return value.isoformat()  # aware (USE_TZ): the offset makes it exact
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not a column value _insert_sql can send")


_record_dumps = functools.partial(json.dumps, default=_jsonable, separators=(",", ":"))

_PLAIN_FIELDS = (
    models.BooleanField, models.CharField, models.DateTimeField, models.FloatField, models.ForeignKey,
    models.IntegerField, models.JSONField,
)  # fmt: skip


@functools.cache
def _insert_statement(model, read_fk: str | None, returning: str) -> tuple[str, tuple]:
    """The statement text (only names from the model's metadata) and its columns: (column, attname, auto_now,
    field)."""
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    fields = tuple(f for f in model._meta.concrete_fields if not f.primary_key and f.attname != read_fk)
    for field in fields:  # the fields whose Python values are their JSON values (datetimes as ISO 8601)
        if not isinstance(field, _PLAIN_FIELDS) or getattr(field, "encoder", None) is not None:
            raise TypeError(f"{field!r}: teach _insert_sql how Django prepares such a field")
    columns = [quote(f.column) for f in fields]
    values = list(columns)
    if read_fk is not None:
        columns.append(quote(read_fk))
        values.append("(SELECT id FROM r)")
    table = quote(model._meta.db_table)
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(values)} "  # noqa: S608  (metadata only)
        f"FROM jsonb_populate_record(NULL::{table}, %s) RETURNING {returning}"
    )
    auto_now = [isinstance(f, models.DateTimeField) and (f.auto_now or f.auto_now_add) for f in fields]
    return sql, tuple(zip([f.column for f in fields], [f.attname for f in fields], auto_now, fields, strict=True))


def new_command_id() -> str:
    return "c-" + secrets.token_hex(6)


def _booking_id(outcome: rules.Outcome) -> int | None:
    if outcome.booking_id:
        return outcome.booking_id
    if isinstance(outcome.booking, rules.BookingFact):
        return outcome.booking.id
    if isinstance(outcome.booking, rules.VisitFact):
        return outcome.booking.booking_id
    return None


def decision_frame(read_id: str, outcome: rules.Outcome, command: dict | None) -> dict:
    """The `decision` frame; `command` is the BarrierCommand's fields (command_id, expires_at) when it opens."""
    return {
        "type": "decision",
        "read_id": read_id,
        "action": outcome.action,
        "reason": outcome.reason,
        "match": outcome.match,
        "booking": outcome.booking_reference if outcome.booking_reference else None,
        "command_id": command["command_id"] if command else None,
        "expires_at": iso(command["expires_at"]) if command else None,
        "duplicate": False,
    }


def _repeat_outcome(prior: dict) -> rules.Outcome:
    """Rule 3: the same plate on this lane within repeat_window_s after a read that opened the barrier."""
    booking = None
    if prior["booking_id"]:
        booking = rules.BookingFact(id=prior["booking_id"], plate="", key="", reference=prior["reference"])
    return rules.Outcome("open", "repeat", match=prior["match"] or None, booking=booking, permit_id=prior["permit_id"])


def _stale_outcome(read, policy, facts: rules.Facts, entry: bool, local_action: str) -> rules.Outcome:
    """Rule 2: an old read is applied to visits as if the barrier had opened for it (unless the controller denied)."""
    outcome = rules.Outcome("none", "stale")
    if local_action == "deny" or not entry:
        return outcome
    linked = rules.entry_match(read, policy, facts)
    if linked is not None and linked.action == "open":
        outcome.match, outcome.booking, outcome.booking_id = linked.match, linked.booking, linked.booking_id
        outcome.permit_id, outcome.vehicle_plate = linked.permit_id, linked.vehicle_plate
    return outcome


# --- Visits ----------------------------------------------------------------------------------------------------

MISSED_EXIT = "exit not read (a later entry of the vehicle followed)"


def _apply_visits(carpark, lane, row: PlateRead, outcome: rules.Outcome, *, stale, entry, local_action,
                  simple: bool) -> int | str | None:  # fmt: skip
    """Apply a decided read to visits: the change in occupancy, "recount" when it is not known, None for none.

    `simple` says no other visit or unpaired exit of the vehicle lies after captured_at, so a live entry just
    opens a visit; otherwise the entry is paired by captured_at (`_visit_for_entry`).
    """
    if stale:
        if local_action == "deny":
            return None
        if entry:
            _visit_for_entry(
                carpark, lane, row, booking_id=outcome.booking_id, permit_id=outcome.permit_id,
                plate=outcome.vehicle_plate,
            )  # fmt: skip
        else:
            _visit_for_exit(carpark, lane, row)
        return "recount"
    delta: int | str | None = None
    if outcome.superseded_visit is not None:
        Visit.objects.filter(pk=outcome.superseded_visit.id, exited_at__isnull=True).update(
            exited_at=row.captured_at, closed_reason="closed by soft anti-passback (the vehicle entered again)"
        )
        _booking_departed(outcome.superseded_visit.booking_id)
        delta = -1
    if outcome.open_visit:
        ids = {"booking_id": outcome.booking_id, "permit_id": outcome.permit_id}
        if simple and outcome.superseded_visit is None and outcome.vehicle_plate is None:
            _visit_create(carpark, lane, row, reference=outcome.booking_reference, **ids)
            return 1
        _visit_for_entry(carpark, lane, row, plate=outcome.vehicle_plate, **ids)
        return "recount"
    if outcome.close_visit is not None:
        _visit_close_live(outcome.close_visit, row, lane, carpark, overstay_minutes=outcome.overstay_minutes)
        return -1
    if outcome.hold_visit is not None:
        Visit.objects.filter(pk=outcome.hold_visit.id).update(
            held_at=timezone.now(), exit_lane=lane, overstay_minutes=outcome.overstay_minutes
        )
    return delta


def _visit_close_live(fact: rules.VisitFact, row: PlateRead, lane, carpark, *, overstay_minutes: int | None) -> None:
    """Close an open visit at a live exit (two statements; the rarer overstay path loads the visit)."""
    Visit.objects.filter(pk=fact.id, exited_at__isnull=True).update(
        exit_read=row, exit_lane=lane, exited_at=row.captured_at, held_at=None, overstay_minutes=overstay_minutes
    )
    _booking_departed(fact.booking_id)
    if overstay_minutes:
        visit = Visit.objects.select_related("booking").get(pk=fact.id)
        visit_overstayed.send(sender=Visit, visit=visit, minutes=overstay_minutes)
    data = {
        "id": fact.id, "carpark": carpark.code, "plate": fact.plate, "entered_at": iso(fact.entered_at),
        "exited_at": iso(row.captured_at), "booking": fact.booking_reference,
    }  # fmt: skip
    events.publish_to_carpark(carpark_id=carpark.id, kind="visit", data=data)


def _visit_create(
    carpark,
    lane,
    row: PlateRead,
    *,
    booking_id=None,
    permit_id=None,
    reference: str | None = None,
    plate=None,
    **fields,
) -> Visit:
    """A visit entered by `row`, under the read's plate or the vehicle's `plate` (a candidate's) when given."""
    plate, key = (plate, plates.lookalike_key(plate)) if plate else (row.plate, row.lookalike_key)
    visit = Visit.objects.create(
        carpark=carpark,
        plate=plate,
        lookalike_key=key,
        entry_read=row,
        entry_lane=lane,
        entered_at=row.captured_at,
        booking_id=booking_id,
        permit_id=permit_id,
        **fields,
    )
    if booking_id and visit.exited_at is not None:  # made closed: its exit was missed, or taken from a visit
        _booking_departed(booking_id)
    elif booking_id:
        Booking.objects.filter(pk=booking_id, status=Booking.Status.CONFIRMED).update(
            status=Booking.Status.ARRIVED, updated_at=timezone.now()
        )
    _publish_visit(carpark, visit, reference=reference)
    return visit


def _visit_for_entry(carpark, lane, row: PlateRead, *, booking_id=None, permit_id=None, plate=None) -> Visit:
    """Pair an entry with the first later exit of the vehicle, by captured_at (reads may come out of order). The
    vehicle is the read's plate, or `plate` when a candidate matched (rules.Outcome.vehicle_plate)."""
    key = plates.lookalike_key(plate) if plate else row.lookalike_key
    if key != row.lookalike_key:
        _vehicle_lock(carpark.id, key)  # the decision holds the read's (misread) plate's lock, not this vehicle's
    at, same_vehicle = row.captured_at, Visit.objects.filter(carpark=carpark, lookalike_key=key)
    later_exit = _unpaired_exit_after(carpark, lane, at, key=key, plate=plate or row.plate)
    if later_exit is not None and not same_vehicle.filter(entered_at__gt=at, entered_at__lt=later_exit.captured_at):
        # A late entry before an already recorded exit: a visit that the exit ends at once, as it would have then.
        visit = _visit_create(carpark, lane, row, booking_id=booking_id, permit_id=permit_id, plate=plate)
        _visit_end(visit, later_exit, later_exit.lane, charge_overstay=True)
        return visit
    spanning = (
        same_vehicle.select_for_update().filter(entered_at__lte=at, exited_at__gt=at).order_by("-entered_at").first()
    )
    if spanning is not None:
        # Inside a recorded visit: that visit's exit belongs to this (later) entry; the earlier one missed its exit.
        exit_read_id, exit_lane_id, exited_at = spanning.exit_read_id, spanning.exit_lane_id, spanning.exited_at
        spanning.exit_read, spanning.exited_at, spanning.closed_reason = None, at, MISSED_EXIT
        spanning.save(update_fields=["exit_read", "exited_at", "closed_reason"])
        return _visit_create(
            carpark, lane, row, booking_id=booking_id, permit_id=permit_id, plate=plate,
            exit_read_id=exit_read_id, exit_lane_id=exit_lane_id, exited_at=exited_at,
        )  # fmt: skip
    next_visit = same_vehicle.filter(entered_at__gt=at).order_by("entered_at").first()
    if next_visit is not None:
        # A later entry is already recorded: this visit's exit was missed; it ended when the next one began.
        return _visit_create(
            carpark, lane, row, booking_id=booking_id, permit_id=permit_id, plate=plate,
            exited_at=next_visit.entered_at, closed_reason=MISSED_EXIT,
        )  # fmt: skip
    for earlier in same_vehicle.select_for_update().filter(exited_at__isnull=True, entered_at__lte=at):
        earlier.exited_at, earlier.closed_reason = at, MISSED_EXIT
        earlier.save(update_fields=["exited_at", "closed_reason"])
        _booking_departed(earlier.booking_id)
        _publish_visit(carpark, earlier)
    return _visit_create(carpark, lane, row, booking_id=booking_id, permit_id=permit_id, plate=plate)


def _unpaired_exit_after(carpark, lane, at: datetime, *, key: str, plate: str) -> PlateRead | None:
    """The vehicle's first exit read after `at` that ended no visit: read as the vehicle (look-alike key), or read
    as another plate with the vehicle's among its usable candidates (exact), as an exit pairs with a candidate.

    Such an exit may also be claimed by a decision about the plate it was read as, which holds another vehicle lock:
    the exit's row is locked, and taken only if it is still unpaired then."""
    unpaired = PlateRead.objects.filter(carpark=carpark, unpaired_exit=True, captured_at__gt=at).order_by("captured_at")
    found = unpaired.filter(lookalike_key=key).select_for_update().first()
    min_score = lane_policy(lane).min_score
    for misread in unpaired.exclude(lookalike_key=key).exclude(candidates=[]):
        if found is not None and misread.captured_at >= found.captured_at:
            break
        if any(p == plate and score >= min_score for p, score in plates.normal_candidates(misread.candidates)):
            taken = PlateRead.objects.select_for_update().filter(pk=misread.pk, unpaired_exit=True).first()
            if taken is not None:
                return taken
    return found


def _vehicle_lock(carpark_id: int, key: str) -> None:
    """Serialise decisions about one vehicle (look-alike key) in a car park, as lane_statement's lock does."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s::integer, hashtext(%s))", [carpark_id, key])


def _visit_for_exit(carpark, lane, row: PlateRead, depth: int = 0) -> Visit | None:
    """Close the vehicle's visit that this (late) exit ends: the latest entered before it, not closed before it. The
    vehicle is the read's main plate (look-alike key), else a usable candidate (exact), as at a live exit."""
    at = row.captured_at
    ended = (
        Visit.objects.select_for_update()
        .filter(carpark=carpark, entered_at__lte=at)
        .filter(Q(exited_at__isnull=True) | Q(exited_at__gt=at))
        .order_by("-entered_at")
    )
    visit = ended.filter(lookalike_key=row.lookalike_key).first()
    if visit is None:
        min_score = lane_policy(lane).min_score
        candidates = {plate for plate, score in plates.normal_candidates(row.candidates) if score >= min_score}
        visit = ended.filter(plate__in=candidates).first() if candidates else None
    if visit is None:
        row.unpaired_exit = True
        row.save(update_fields=["unpaired_exit"])
        return None
    freed = visit.exit_read if visit.exited_at is not None else None
    _visit_end(visit, row, lane, charge_overstay=freed is None)
    if freed is not None and depth < 3:
        # The visit had a later exit recorded: the first later exit wins, and that one ends another visit or none.
        _visit_for_exit(carpark, freed.lane, freed, depth + 1)
    return visit


def _visit_end(visit: Visit, row: PlateRead, lane, *, charge_overstay: bool) -> None:
    """End `visit` with the exit read `row` decided after the fact, as its live exit would have."""
    overstay = None
    if charge_overstay and visit.booking_id:
        # Applied as if the barrier had opened (device-protocol.md 3, rule 2): past the booking's departure + grace
        # it is an overstay, charged whatever the policy (the car has gone: nothing is left to hold).
        departure = Booking.objects.filter(pk=visit.booking_id).values_list("departure", flat=True).first()
        fact = rules.VisitFact(id=visit.id, plate=visit.plate, key=visit.lookalike_key, booking_departure=departure)
        overstay = rules.overstay_minutes(fact, row.captured_at, lane_policy(lane))
    if row.booking_id is None and row.permit_id is None and (visit.booking_id or visit.permit_id):
        # the read is the booking's (or permit's), as a live exit's is: explained, and kept past retention
        row.booking_id, row.permit_id = visit.booking_id, visit.permit_id
        row.save(update_fields=["booking", "permit"])
    _visit_close(visit.id, row, lane, overstay_minutes=overstay)


def _visit_close(visit_id: int, row: PlateRead, lane, *, overstay_minutes: int | None = None) -> None:
    visit = Visit.objects.select_for_update(of=("self",)).select_related("carpark").get(pk=visit_id)
    visit.exit_read, visit.exit_lane, visit.exited_at, visit.held_at = row, lane, row.captured_at, None
    visit.closed_reason = ""
    fields = ["exit_read", "exit_lane", "exited_at", "held_at", "closed_reason"]
    if overstay_minutes is not None:
        visit.overstay_minutes = overstay_minutes
        fields.append("overstay_minutes")
    visit.save(update_fields=fields)
    if row.unpaired_exit:
        row.unpaired_exit = False
        row.save(update_fields=["unpaired_exit"])
    _visit_closed_effects(visit, overstay_minutes)


def _booking_departed(booking_id: int | None) -> None:
    """Closing a booking's visit, however it closes, sets the booking `departed` (device-protocol.md 3)."""
    if booking_id:
        Booking.objects.filter(pk=booking_id, status__in=[Booking.Status.CONFIRMED, Booking.Status.ARRIVED]).update(
            status=Booking.Status.DEPARTED, updated_at=timezone.now()
        )


def _visit_closed_effects(visit: Visit, overstay_minutes: int | None) -> None:
    _booking_departed(visit.booking_id)
    if overstay_minutes:
        visit_overstayed.send(sender=Visit, visit=visit, minutes=overstay_minutes)
    _publish_visit(visit.carpark, visit)


def visit_close_manual(*, visit_id: int, user, reason: str) -> Visit:
    """Staff close a visit whose exit read was missed (or settle a held overstay), with a reason, audited."""
    if not reason.strip():
        raise ValueError("a reason is required")
    with transaction.atomic():
        visit = Visit.objects.select_for_update(of=("self",)).select_related("carpark").get(pk=visit_id)
        if visit.exited_at is None:
            held_overstay = visit.overstay_minutes if visit.held_at is not None else None
            visit.exited_at, visit.closed_reason, visit.held_at = timezone.now(), reason.strip()[:200], None
            visit.save(update_fields=["exited_at", "closed_reason", "held_at"])
            audit_log_record(
                action="visit.close", actor=user, obj=visit, carpark=visit.carpark, data={"reason": reason.strip()}
            )
            # A held overstay (policy `hold`) is charged as measured when the car presented at the exit.
            _visit_closed_effects(visit, held_overstay)
            _publish_occupancy(visit.carpark)
    return visit


# --- Alerts ----------------------------------------------------------------------------------------------------


def _alert_raise(
    *, carpark, lane, plate: str, reason: str, read: PlateRead | None, policy: rules.Policy, checked: bool = False
) -> Alert | None:
    """At most one alert per lane and plate every repeat_window_s (device-protocol.md 3, rule 4)."""
    since = timezone.now() - timedelta(seconds=policy.repeat_window_s)
    if not checked and Alert.objects.filter(lane=lane, plate=plate, created_at__gte=since).exists():
        return None
    alert = Alert.objects.create(carpark=carpark, lane=lane, plate=plate, reason=reason, read=read)
    events.publish_to_carpark(carpark_id=carpark.id, kind="alert", data=selectors.alert_event_data(alert))
    return alert


def alert_acknowledge(*, alert_id: int, user) -> Alert:
    """A staff member has seen to an alert (acknowledging twice keeps the first)."""
    with transaction.atomic():
        alert = (
            Alert.objects.select_for_update(of=("self",))
            .select_related("carpark", "lane", "acknowledged_by")
            .get(pk=alert_id)
        )
        if alert.acknowledged_at is None:
            alert.acknowledged_by, alert.acknowledged_at = user, timezone.now()
            alert.save(update_fields=["acknowledged_by", "acknowledged_at"])
            audit_log_record(action="alert.acknowledge", actor=user, obj=alert, carpark=alert.carpark)
            events.publish_to_carpark(carpark_id=alert.carpark_id, kind="alert", data=selectors.alert_event_data(alert))
    return alert


# --- Barrier commands ------------------------------------------------------------------------------------------


def barrier_open_manual(*, lane_id: int, user, reason: str) -> BarrierCommand:
    """Staff open a lane's barrier from the dashboard: a server-initiated command, audited.

    Raises LaneOffline at once when no online controller serves the lane. On an exit lane where a car is held
    for overstay (policy `hold`), opening by hand closes that visit.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValueError("a reason is required")
    with transaction.atomic():
        lane = Lane.objects.select_related("carpark").get(pk=lane_id)
        device = (
            Device.objects.filter(lanes=lane, online=True, revoked_at__isnull=True).order_by("-last_seen_at").first()
        )
        if device is None:
            raise LaneOffline(f"the controller of lane {lane} is offline")
        command = BarrierCommand.objects.create(
            command_id=new_command_id(),
            lane=lane,
            device=device,
            action="open",
            reason=f"manual: {reason}"[:200],
            issued_by=user,
            expires_at=timezone.now() + COMMAND_TTL,
        )
        audit_log_record(
            action="barrier.open_manual",
            actor=user,
            obj=command,
            carpark=lane.carpark,
            data={"lane": lane.code, "reason": reason, "command_id": command.command_id},
        )
        held = Visit.objects.select_for_update(of=("self",)).filter(
            exit_lane=lane, exited_at__isnull=True, held_at__isnull=False
        )
        held = held.select_related("carpark").order_by("-held_at").first()
        if held is not None:
            held.exited_at, held.held_at = timezone.now(), None
            held.closed_reason = f"opened by hand at the exit by {user.get_username() if user else 'staff'}"
            held.save(update_fields=["exited_at", "held_at", "closed_reason"])
            _visit_closed_effects(held, held.overstay_minutes)  # charged as measured when it presented at the exit
            _publish_occupancy(lane.carpark)
        events.publish_to_device(
            device_id=str(device.id),
            kind="command",
            data={
                "type": "command",
                "command_id": command.command_id,
                "lane": lane.code,
                "action": "open",
                "reason": "manual",
                "expires_at": iso(command.expires_at),
            },
        )
        _publish_command(command, lane)
    return command


def command_result_record(*, device_id: str, command_id: str, status: str, detail: str = "") -> BarrierCommand:
    """A controller's `command_result`. Each command is answered once: a repeated answer changes nothing."""
    with transaction.atomic():
        command = (
            BarrierCommand.objects.select_for_update(of=("self",))
            .select_related("lane", "issued_by")
            .filter(device_id=device_id, command_id=command_id)
            .first()
        )
        if command is None:
            raise UnknownCommand(command_id)
        if command.status in (BarrierCommand.Status.PENDING, BarrierCommand.Status.TIMED_OUT):
            command.status, command.detail, command.result_at = status, detail[:500], timezone.now()
            command.save(update_fields=["status", "detail", "result_at"])
            _publish_command(command, command.lane)
    return command


def commands_time_out(*, now: datetime | None = None) -> int:
    """Commands without a result by expires_at are marked timed_out (staff see it)."""
    now = now or timezone.now()
    count = 0
    with transaction.atomic():
        pending = BarrierCommand.objects.select_for_update(skip_locked=True, of=("self",)).select_related(
            "lane", "issued_by"
        )
        for command in pending.filter(status=BarrierCommand.Status.PENDING, expires_at__lt=now):
            command.status, command.result_at = BarrierCommand.Status.TIMED_OUT, now
            command.save(update_fields=["status", "result_at"])
            _publish_command(command, command.lane)
            count += 1
    return count


# --- Offline allow-list (device-protocol.md 5) -----------------------------------------------------------------


@dataclass(frozen=True)
class Allowlist:
    version: int
    entries: list[dict]
    blocklist: list[str]

    def frames(self) -> list[dict]:
        return [
            {"type": "allowlist", "version": self.version, "entries": self.entries},
            {"type": "blocklist", "plates": self.blocklist},
        ]


def allowlist_refresh(*, carpark_id: int) -> Allowlist:
    """The car park's current allow-list and block list; when they changed, a new version is pushed to its devices."""
    entries, blocklist = selectors.allowlist_content(carpark_id=carpark_id)
    digest = hashlib.sha256(json.dumps([entries, blocklist], sort_keys=True).encode()).hexdigest()
    with transaction.atomic():
        state, _ = AllowlistState.objects.select_for_update().get_or_create(carpark_id=carpark_id)
        if state.digest != digest:
            state.version, state.digest = state.version + 1, digest
            state.save(update_fields=["version", "digest", "updated_at"])
            for device_id in Device.objects.filter(carpark_id=carpark_id, revoked_at__isnull=True).values_list(
                "id", flat=True
            ):
                events.publish_to_device(device_id=str(device_id), kind="allowlist", data={"version": state.version})
    return Allowlist(version=state.version, entries=entries, blocklist=blocklist)


# Content per (car park, version), in Django's cache (Redis: shared by every process): the connections of one car
# park share one computation (the query reads every confirmed booking in the 24-hour window). A new version, or an
# hour, computes it afresh.
ALLOWLIST_CACHE_S = 3600


def allowlist_current(*, carpark_id: int) -> Allowlist:
    """The allow-list at its current version, for a connection (after `welcome`, or told of a new version).

    Versions are made by `allowlist_refresh` (jobs on booking, permit and block-list changes, and every 5 minutes);
    a car park without one yet gets its first here."""
    version = AllowlistState.objects.filter(carpark_id=carpark_id).values_list("version", flat=True).first()
    if version is None:
        allowlist = allowlist_refresh(carpark_id=carpark_id)
        version = allowlist.version
        _cached(lambda: cache.set(f"allowlist:{carpark_id}:{version}", allowlist, ALLOWLIST_CACHE_S))
        return allowlist

    def compute() -> Allowlist:
        entries, blocklist = selectors.allowlist_content(carpark_id=carpark_id)
        return Allowlist(version=version, entries=entries, blocklist=blocklist)

    cached = _cached(lambda: cache.get_or_set(f"allowlist:{carpark_id}:{version}", compute, ALLOWLIST_CACHE_S))
    return cached if cached is not None else compute()


def _cached(operation):
    """The cache is only a saving: with Redis away, connections still get their allow-list, computed afresh."""
    try:
        return operation()
    except Exception:  # the cache backend's own errors (redis-py's, for Redis), whatever they are
        log.warning("allow-list cache unavailable; computing it afresh", exc_info=True)
        return None


def carpark_settings_changed(*, carpark_id: int) -> None:
    """Staff changed a car park's lane policies: connected controllers get a new `welcome` (device-protocol.md 2)."""
    for device_id in Device.objects.filter(carpark_id=carpark_id, revoked_at__isnull=True).values_list("id", flat=True):
        events.publish_to_device(device_id=str(device_id), kind="welcome", data={})


def device_settings_changed(*, device_id: str) -> None:
    """Staff changed a device's lanes, name or vendor settings: its live connection gets a new `welcome` with its
    current lanes (device-protocol.md 2), after commit."""
    if Device.objects.filter(pk=device_id, revoked_at__isnull=True).exists():
        events.publish_to_device(device_id=str(device_id), kind="welcome", data={})


# --- Permits and the block list (device-protocol.md 3: plates are matched by normal form and look-alike key) -----


def _plate_of(plate_raw: str) -> tuple[str, str, str]:
    """(raw as typed, normal form, look-alike key); ValueError for a plate without letters or digits."""
    raw = (plate_raw or "").strip()
    plate = plates.normalise(raw)
    if not plate:
        raise ValueError("a plate has letters or digits, e.g. AB12 CDE")
    return raw, plate, plates.lookalike_key(plate)


def permit_save(*, permit: Permit, actor=None) -> Permit:
    """Create or change a permit from its plate as written (`plate_raw`): its normal form and look-alike key are
    derived here. Raises ValueError for a plate without letters or digits, or a validity that ends before it starts.
    The car park's offline allow-list follows (apps.access.receivers)."""
    if permit.valid_until <= permit.valid_from:
        raise ValueError("a permit's valid_until must be after its valid_from")
    data = {"holder": permit.holder, "valid_from": iso(permit.valid_from), "valid_until": iso(permit.valid_until)}
    return _plated_save(permit, kind="permit", actor=actor, data=data)


def blocked_plate_save(*, blocked_plate: BlockedPlate, actor=None) -> BlockedPlate:
    """Create or change a block-list entry from its plate as written (`plate_raw`): normal form and look-alike key
    derived here. Raises ValueError for a plate without letters or digits. Controllers' block list follows."""
    return _plated_save(blocked_plate, kind="blocked_plate", actor=actor, data={"reason": blocked_plate.reason})


def _plated_save[T: (Permit, BlockedPlate)](instance: T, *, kind: str, actor, data: dict) -> T:
    instance.plate_raw, instance.plate, instance.lookalike_key = _plate_of(instance.plate_raw)
    created = instance.pk is None
    with transaction.atomic():
        instance.save()
        audit_log_record(
            action=f"{kind}.create" if created else f"{kind}.update",
            actor=actor,
            obj=instance,
            carpark=instance.carpark,
            data={"plate": instance.plate, **data},
        )
    return instance


# --- Scheduled housekeeping ------------------------------------------------------------------------------------


def bookings_mark_no_show(*, now: datetime | None = None) -> int:
    """Confirmed bookings whose departure has passed without an arrival become `no_show`."""
    now = now or timezone.now()
    with transaction.atomic():
        due = Booking.objects.select_for_update(of=("self",)).filter(status=Booking.Status.CONFIRMED, departure__lt=now)
        rows = list(due.values_list("id", "departure"))
        Booking.objects.filter(pk__in=[pk for pk, _ in rows]).update(status=Booking.Status.NO_SHOW, updated_at=now)
        # Dashboards list today's departures only: older ones (a backlog after downtime) need no event.
        recent = [pk for pk, departure in rows if departure >= now - NO_SHOW_EVENTS_WITHIN]
        booking_services.booking_changes_publish(booking_ids=recent)
    return len(rows)


def reads_purge(*, now: datetime | None = None, batch: int = 5000) -> int:
    """Delete reads of vehicles with no booking or permit older than their car park's retention (spec 6)."""
    now = now or timezone.now()
    deleted = 0
    for carpark in CarPark.objects.only("id", "read_retention_days"):
        cutoff = now - timedelta(days=carpark.read_retention_days)
        while True:
            ids = list(
                PlateRead.objects.filter(
                    carpark=carpark, booking__isnull=True, permit__isnull=True, received_at__lt=cutoff
                ).values_list("id", flat=True)[:batch]
            )
            if not ids:
                break
            with transaction.atomic():
                deleted += PlateRead.objects.filter(pk__in=ids).delete()[0]
    return deleted


# --- Events ----------------------------------------------------------------------------------------------------


def _publish_read(carpark, lane, row: PlateRead) -> None:
    data = _read_event_data(carpark, lane, row.id, row.__dict__)
    events.publish_to_carpark(carpark_id=carpark.id, kind="read", data=data)


def _read_event_data(carpark, lane, read_pk: int, row: dict) -> dict:
    """A read's event from its fields by attname."""
    return {
        "id": read_pk,
        "carpark": carpark.code,
        "lane": lane.code,
        "plate": row["plate"],
        "action": row["action"],
        "reason": row["reason"],
        "match": row["match"] or None,
        "booking": row["decision"]["booking"],
        "captured_at": iso(row["captured_at"]),
        "read_id": row["read_id"],
    }


def _publish_visit(carpark, visit: Visit, reference: str | None = None) -> None:
    data = selectors.visit_event_data(visit, carpark, reference=reference)
    events.publish_to_carpark(carpark_id=carpark.id, kind="visit", data=data)


def _publish_occupancy(carpark) -> None:
    """Occupancy = open visits, counted now."""
    data = {"carpark": carpark.code, "occupancy": selectors.carpark_occupancy(carpark_id=carpark.id)}
    events.publish_to_carpark(carpark_id=carpark.id, kind="occupancy", data=data)


def _publish_occupancy_changed(carpark) -> None:
    events.publish_to_carpark(carpark_id=carpark.id, kind="occupancy", data=_occupancy_changed_data(carpark))


def _occupancy_changed_data(carpark) -> dict:
    """Occupancy changed, not counted (`null`): the decision path does not pay for a count that grows with the car
    park; the dashboards' fan-out recounts once per flush for all the changes it folds together."""
    return {"carpark": carpark.code, "occupancy": None}


def _publish_command(command: BarrierCommand, lane) -> None:
    events.publish_to_carpark(
        carpark_id=lane.carpark_id, kind="command", data=selectors.command_event_data(command, lane)
    )
