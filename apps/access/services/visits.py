"""Visits: opened and closed by decided reads (paired by capture time when reads arrive out of order), closed by
staff, overstays charged; no-shows marked; old reads purged."""

from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

from apps.access import rules
from apps.access.models import (
    PlateRead,
    Visit,
)
from apps.access.services.common import NO_SHOW_EVENTS_WITHIN, _publish_occupancy, _publish_visit, iso, lane_policy
from apps.access.signals import visit_overstayed
from apps.access.vocabulary import Action
from apps.bookings import flights
from apps.bookings import services as booking_services
from apps.bookings.models import Booking
from apps.carparks.models import CarPark
from apps.core import events, plates
from apps.core.services import audit_log_record

# --- Visits ----------------------------------------------------------------------------------------------------

MISSED_EXIT = "exit not read (a later entry of the vehicle followed)"


def _apply_visits(carpark, lane, row: PlateRead, outcome: rules.Outcome, *, stale, entry, local_action,
                  simple: bool) -> int | str | None:  # fmt: skip
    """Apply a decided read to visits: the change in occupancy, "recount" when it is not known, None for none.

    `simple` says no other visit or unpaired exit of the vehicle lies after captured_at, so a live entry just
    opens a visit; otherwise the entry is paired by captured_at (`_visit_for_entry`).
    """
    if stale:
        if local_action == Action.DENY:
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
    note = ""
    if fact.booking_id and not overstay_minutes:  # a late return flight may be why this exit is not charged
        note = RawSQL(*flights.no_overstay_note_sql(at=row.captured_at, grace_min=carpark.grace_min))  # noqa: S611  (fixed SQL)
    Visit.objects.filter(pk=fact.id, exited_at__isnull=True).update(
        exit_read=row, exit_lane=lane, exited_at=row.captured_at, held_at=None, overstay_minutes=overstay_minutes,
        charge_note=note,
    )  # fmt: skip
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
        departure = Booking.objects.filter(pk=visit.booking_id).values_list("due_out", flat=True).first()
        fact = rules.VisitFact(id=visit.id, plate=visit.plate, key=visit.lookalike_key, booking_departure=departure)
        overstay = rules.overstay_minutes(fact, row.captured_at, lane_policy(lane))
    if row.booking_id is None and row.permit_id is None and (visit.booking_id or visit.permit_id):
        # the read is the booking's (or permit's), as a live exit's is: explained, and kept past retention
        row.booking_id, row.permit_id = visit.booking_id, visit.permit_id
        row.save(update_fields=["booking", "permit"])
    _visit_close(visit.id, row, lane, overstay_minutes=overstay)
    if charge_overstay and visit.booking_id and not overstay:  # a late return flight may be why it is not charged
        note = flights.no_overstay_note_sql(at=row.captured_at, grace_min=lane_policy(lane).grace_min)
        Visit.objects.filter(pk=visit.id).update(charge_note=RawSQL(*note))  # noqa: S611  (fixed SQL)


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
