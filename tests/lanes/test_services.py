"""The access services against PostgreSQL, without a server: visits by captured_at, stale and repeated reads,
policies, alerts, commands, housekeeping (device-protocol.md 3-6)."""

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.models import User

from apps.access import selectors, services
from apps.access.decision import plate_read_decide
from apps.access.models import Alert, AllowlistState, BarrierCommand, BlockedPlate, Device, Permit, PlateRead, Visit
from apps.bookings.models import Booking
from apps.carparks.models import Lane
from apps.core import events
from apps.core.models import AuditLog
from apps.core.plates import lookalike_key
from tests.lanes.conftest import make_booking, make_device, now

_ids = iter(range(1, 1_000_000))


@pytest.fixture
def lanes(world_db):
    device = make_device("TST1", ["IN", "IN2", "OUT"])
    return world_db["one"], device["device_id"]


def decide(device_id: str, lane: str, plate: str, at=None, **extra) -> dict:
    return plate_read_decide(
        device_id=device_id,
        read_id=extra.pop("read_id", f"t-{next(_ids)}"),
        lane_code=lane,
        plate=plate,
        score=extra.pop("score", 0.95),
        captured_at=at or now(),
        **extra,
    )


def assert_the_one_visit_ended(carpark, booking, *, at, by: str) -> None:
    """The car park's one visit ended at `at` by the exit read as `by`: nobody inside, no exit left unpaired, the
    booking departed."""
    visit = Visit.objects.get()
    assert visit.exited_at == at and visit.exit_read.plate == by
    assert selectors.carpark_occupancy(carpark_id=carpark.id) == 0
    assert not PlateRead.objects.filter(unpaired_exit=True).exists()
    booking.refresh_from_db()
    assert booking.status == "departed"


def test_stale_entry_opens_a_visit_with_its_booking_but_never_the_barrier(lanes):
    carpark, device = lanes
    booking = make_booking(carpark, "ST4LE1")
    decision = decide(device, "IN", "ST4LE1", now() - timedelta(minutes=5), local_action="open", retransmit=True)
    assert (decision["action"], decision["reason"], decision["command_id"]) == ("none", "stale", None)
    assert decision["booking"] == booking.reference
    visit = Visit.objects.get()
    assert visit.booking == booking and visit.exited_at is None
    booking.refresh_from_db()
    assert booking.status == "arrived"


def test_stale_read_denied_locally_is_only_recorded(lanes):
    _carpark, device = lanes
    decision = decide(device, "IN", "DEN1ED", now() - timedelta(minutes=5), local_action="deny")
    assert (decision["action"], decision["reason"]) == ("none", "stale")
    assert not Visit.objects.exists() and PlateRead.objects.count() == 1 and not Alert.objects.exists()


def test_late_entry_before_a_recorded_no_visit_exit_makes_a_closed_visit(lanes):
    carpark, device = lanes
    exit_at = now() - timedelta(seconds=5)
    exit_decision = decide(device, "OUT", "LA7E1", exit_at)
    assert (exit_decision["action"], exit_decision["reason"]) == ("open", "no_visit")
    decide(device, "IN", "LA7E1", now() - timedelta(hours=2), retransmit=True)
    visit = Visit.objects.get()
    assert visit.exited_at == exit_at and visit.exit_read.read_id == PlateRead.objects.get(lane__code="OUT").read_id
    assert selectors.carpark_occupancy(carpark_id=carpark.id) == 0
    assert not PlateRead.objects.filter(unpaired_exit=True).exists()


@pytest.mark.parametrize("late", ["buffered", "live"])
def test_a_late_entry_pairs_with_an_exit_whose_main_plate_was_misread(lanes, late):
    """The exit read the plate wrong but had the vehicle's among its candidates, and no visit to end: it is filed
    unpaired under the misread plate. The vehicle's entry, captured before it but decided after (uploaded from a
    controller's buffer, or a few seconds late), makes a closed visit with it."""
    carpark, device = lanes
    booking = make_booking(carpark, "M15EXT")
    exit_at = now() - timedelta(seconds=1)
    leaving = decide(device, "OUT", "W15EXT", exit_at, candidates=[{"plate": "M15 EXT", "score": 0.9}])
    assert (leaving["reason"], PlateRead.objects.get().unpaired_exit) == ("no_visit", True)
    if late == "buffered":
        decide(device, "IN", "M15EXT", now() - timedelta(hours=2), local_action="open", retransmit=True)
    else:
        assert decide(device, "IN", "M15EXT", now() - timedelta(seconds=3))["reason"] == "booking"
    assert_the_one_visit_ended(carpark, booking, at=exit_at, by="W15EXT")


def test_a_late_exit_ends_the_visit_it_belongs_to_and_frees_a_later_exit(lanes):
    _carpark, device = lanes
    t = now() - timedelta(hours=5)
    decide(device, "IN", "OR1DER", t, local_action="open")  # entry 1
    decide(device, "OUT", "OR1DER", t + timedelta(hours=3), local_action="open")  # exit 2 (arrives first)
    decide(device, "IN", "OR1DER", t + timedelta(hours=2), local_action="open")  # entry 2
    decide(device, "OUT", "OR1DER", t + timedelta(hours=1), local_action="open")  # exit 1 (arrives last)
    visits = list(Visit.objects.order_by("entered_at").values_list("entered_at", "exited_at"))
    assert visits == [(t, t + timedelta(hours=1)), (t + timedelta(hours=2), t + timedelta(hours=3))]
    assert all(v.exit_read_id for v in Visit.objects.all())


def test_repeat_within_the_window_opens_again_without_a_second_visit(lanes):
    carpark, device = lanes
    booking = make_booking(carpark, "RE9EAT")
    t = now()
    first = decide(device, "IN", "RE9EAT", t)
    repeat = decide(device, "IN", "re9eat", t + timedelta(seconds=10))
    later = decide(device, "IN", "RE9EAT", t + timedelta(seconds=26))  # 16 s after the repeat, which opened
    other_lane = decide(device, "IN2", "RE9EAT", t + timedelta(seconds=5))
    assert (first["reason"], repeat["reason"], repeat["booking"]) == ("booking", "repeat", booking.reference)
    assert repeat["command_id"] != first["command_id"]
    assert (later["action"], later["reason"]) == ("deny", "already_inside")
    assert other_lane["reason"] == "already_inside"
    assert Visit.objects.count() == 1 and BarrierCommand.objects.count() == 2


def test_soft_anti_passback_closes_the_old_visit_and_alerts(lanes):
    carpark, device = lanes
    carpark.anti_passback = "soft"
    carpark.save()
    booking = make_booking(carpark, "SO7FT")
    decide(device, "IN", "SO7FT", now() - timedelta(seconds=25))
    again = decide(device, "IN2", "SO7FT")
    # closing the booking's visit made it `departed` (device-protocol.md 3): entry rule 5 then says already_used
    assert (again["action"], again["reason"], again["booking"]) == ("deny", "already_used", booking.reference)
    assert Visit.objects.filter(exited_at__isnull=True).count() == 0
    assert "soft anti-passback" in Visit.objects.get().closed_reason
    assert Alert.objects.filter(plate="SO7FT").count() == 1
    booking.refresh_from_db()
    assert booking.status == "departed"


def test_a_later_entry_closes_the_visit_whose_exit_was_missed_and_its_booking_departs(lanes):
    carpark, device = lanes
    booking = make_booking(carpark, "M1SSED", arrival=now() - timedelta(days=2))
    Visit.objects.create(
        carpark=carpark, plate="M1SSED", lookalike_key=lookalike_key("M1SSED"), entered_at=now() - timedelta(days=2),
        booking=booking,
    )  # fmt: skip
    booking.status = "arrived"
    booking.save(update_fields=["status"])
    # the controller was offline when the car came back: its entry arrives late
    decide(device, "IN", "M1SSED", now() - timedelta(minutes=5), local_action="open", retransmit=True)
    closed = Visit.objects.get(booking=booking)
    assert closed.exited_at is not None and closed.closed_reason.startswith("exit not read")
    booking.refresh_from_db()
    assert booking.status == "departed"


def test_overstay_open_and_flag_and_hold_then_manual_open(lanes, django_capture_on_commit_callbacks):
    carpark, device = lanes
    staff = User.objects.create_user("sup")
    late = make_booking(carpark, "OV3R1", arrival=now() - timedelta(days=3), departure=now() - timedelta(hours=3))
    Visit.objects.create(
        carpark=carpark,
        plate="OV3R1",
        lookalike_key=lookalike_key("OV3R1"),
        entered_at=now() - timedelta(days=3),
        booking=late,
    )
    flagged = decide(device, "OUT", "OV3R1")
    assert (flagged["action"], flagged["reason"], flagged["booking"]) == ("open", "overstay", late.reference)
    assert Visit.objects.get().overstay_minutes >= 119 and Alert.objects.filter(reason="overstay").exists()

    carpark.overstay_policy = "hold"
    carpark.save()
    held_booking = make_booking(
        carpark, "H0LD1", arrival=now() - timedelta(days=3), departure=now() - timedelta(hours=3)
    )
    visit = Visit.objects.create(
        carpark=carpark,
        plate="H0LD1",
        lookalike_key=lookalike_key("H0LD1"),
        entered_at=now() - timedelta(days=3),
        booking=held_booking,
    )
    held = decide(device, "OUT", "H0LD1")
    assert (held["action"], held["reason"], held["command_id"]) == ("deny", "overstay", None)
    visit.refresh_from_db()
    assert visit.exited_at is None and visit.held_at is not None
    Device.objects.filter(pk=device).update(online=True)
    out = Lane.objects.get(code="OUT")
    layer = get_channel_layer()
    screen = async_to_sync(layer.new_channel)()  # the lane's display page, as consumers/lane_display.py joins
    async_to_sync(layer.group_add)(events.lane_group(out.id), screen)
    with django_capture_on_commit_callbacks(execute=True):
        command = services.barrier_open_manual(lane_id=out.id, user=staff, reason="paid at desk")
    told = async_to_sync(asyncio.wait_for)(layer.receive(screen), 5)
    assert (told["type"], told["lane"], told["kind"]) == ("lane.event", out.id, "overstay_closed")
    visit.refresh_from_db()
    held_booking.refresh_from_db()
    assert visit.exited_at is not None and held_booking.status == "departed"
    assert command.issued_by == staff and AuditLog.objects.filter(action="barrier.open_manual").exists()


def test_exit_matches_and_ambiguity(lanes):
    carpark, device = lanes
    for plate in ("AB12CDE", "A812CDE"):
        Visit.objects.create(
            carpark=carpark, plate=plate, lookalike_key=lookalike_key(plate), entered_at=now() - timedelta(hours=1)
        )
    ambiguous = decide(device, "OUT", "AB12C0E")  # look-alike of both
    assert (ambiguous["action"], ambiguous["reason"], ambiguous["match"]) == ("open", "ambiguous", "lookalike")
    assert Visit.objects.filter(exited_at__isnull=True).count() == 2
    exact = decide(device, "OUT", "AB12CDE")
    assert (exact["reason"], exact["match"]) == ("departure", "exact")
    candidate = decide(device, "OUT", "ZZZ", score=0.95, candidates=[{"plate": "A812CDE", "score": 0.8}])
    assert (candidate["reason"], candidate["match"]) == ("departure", "candidate")
    low = decide(device, "OUT", "LOW", score=0.2)
    assert (low["action"], low["reason"]) == ("deny", "low_confidence")


def test_permits_blocks_and_booking_states(lanes):
    carpark, device = lanes
    Permit.objects.create(
        carpark=carpark,
        holder="Staff",
        plate_raw="PE12MIT",
        plate="PE12MIT",
        lookalike_key=lookalike_key("PE12MIT"),
        valid_from=now() - timedelta(days=1),
        valid_until=now() + timedelta(days=1),
    )
    BlockedPlate.objects.create(carpark=carpark, plate_raw="BL0CK", plate="BL0CK", lookalike_key=lookalike_key("BL0CK"))
    make_booking(carpark, "BL0CK")
    make_booking(carpark, "CA12NCL", status="cancelled")
    make_booking(carpark, "EA12RLY", arrival=now() + timedelta(hours=5))
    make_booking(carpark, "US12ED", status="departed")
    make_booking(carpark, "EX12PRD", arrival=now() - timedelta(days=3), departure=now() - timedelta(hours=1))
    results = {
        plate: decide(device, "IN", plate) for plate in ("PE12MIT", "BLOCK", "CA12NCL", "EA12RLY", "US12ED", "EX12PRD")
    }
    assert {p: (d["action"], d["reason"]) for p, d in results.items()} == {
        "PE12MIT": ("open", "permit"),
        "BLOCK": ("deny", "blocked"),
        "CA12NCL": ("deny", "cancelled"),
        "EA12RLY": ("deny", "too_early"),
        "US12ED": ("deny", "already_used"),
        "EX12PRD": ("deny", "expired"),
    }
    assert Visit.objects.get().permit.holder == "Staff"
    exit_ = decide(device, "OUT", "PE12MIT")
    assert exit_["reason"] == "permit"


def test_alerts_are_rate_limited_per_lane_and_plate_and_acknowledged(lanes):
    _carpark, device = lanes
    staff = User.objects.create_user("op")
    t = now()
    for seconds in (0, 2, 4):
        assert decide(device, "IN", "UNKN0WN", t + timedelta(seconds=seconds))["reason"] == "unknown_vehicle"
    decide(device, "IN2", "UNKN0WN", t)
    assert Alert.objects.filter(lane__code="IN").count() == 1 and Alert.objects.count() == 2
    Alert.objects.update(created_at=now() - timedelta(seconds=16))
    decide(device, "IN", "UNKN0WN", t + timedelta(seconds=6))
    assert Alert.objects.filter(lane__code="IN").count() == 2
    alert = Alert.objects.first()
    services.alert_acknowledge(alert_id=alert.id, user=staff)
    services.alert_acknowledge(alert_id=alert.id, user=User.objects.create_user("other"))
    alert.refresh_from_db()
    assert alert.acknowledged_by == staff and alert.acknowledged_at is not None


def test_commands_time_out_and_manual_open_fails_for_an_offline_lane(lanes):
    carpark, device = lanes
    make_booking(carpark, "T1MEOUT")
    decision = decide(device, "IN", "T1MEOUT")
    assert services.commands_time_out(now=now() + timedelta(seconds=11)) == 1
    assert BarrierCommand.objects.get(command_id=decision["command_id"]).status == "timed_out"
    with pytest.raises(services.LaneOffline):
        services.barrier_open_manual(lane_id=Lane.objects.get(code="IN").id, user=None, reason="visitor")
    with pytest.raises(ValueError):
        services.barrier_open_manual(lane_id=Lane.objects.get(code="IN").id, user=None, reason="  ")


def test_no_show_retention_and_manual_visit_close(lanes):
    carpark, device = lanes
    staff = User.objects.create_user("sup")
    gone = make_booking(carpark, "N0SH0W", arrival=now() - timedelta(days=3), departure=now() - timedelta(hours=1))
    current = make_booking(carpark, "CUR1")
    assert services.bookings_mark_no_show() == 1
    gone.refresh_from_db()
    current.refresh_from_db()
    assert (gone.status, current.status) == ("no_show", "confirmed")

    decide(device, "IN", "CUR1")  # a booked vehicle: kept
    decide(device, "IN", "STRANGER")  # nobody's: deleted after the retention period
    PlateRead.objects.update(received_at=now() - timedelta(days=91), captured_at=now() - timedelta(days=91))
    assert services.reads_purge() == 1
    assert list(PlateRead.objects.values_list("plate", flat=True)) == ["CUR1"]

    visit = Visit.objects.get()
    services.visit_close_manual(visit_id=visit.id, user=staff, reason="exit camera down")
    visit.refresh_from_db()
    current.refresh_from_db()
    assert visit.closed_reason == "exit camera down" and current.status == "departed"


def test_allowlist_versions_only_change_with_content(lanes):
    carpark, _device = lanes
    first = services.allowlist_refresh(carpark_id=carpark.id)
    same = services.allowlist_refresh(carpark_id=carpark.id)
    make_booking(carpark, "AL1ST", arrival=now() + timedelta(hours=20))
    make_booking(carpark, "FAR", arrival=now() + timedelta(days=5), departure=now() + timedelta(days=6))
    changed = services.allowlist_refresh(carpark_id=carpark.id)
    assert first.version == same.version and changed.version == first.version + 1
    assert [e["plate"] for e in changed.entries] == ["AL1ST"]
    assert AllowlistState.objects.get().version == changed.version
    assert Booking.objects.count() == 2


@pytest.mark.parametrize("main_score", [0.95, 0.3], ids=["main usable", "main unusable"])
def test_an_entry_matched_by_a_candidate_opens_the_visit_under_the_matched_plate(lanes, main_score):
    carpark, device = lanes
    booking = make_booking(carpark, "CA11DTE")
    entry = decide(device, "IN", "XQ77ZZK", score=main_score, candidates=[{"plate": "CA11DTE", "score": 0.85}])
    assert (entry["action"], entry["reason"], entry["match"]) == ("open", "booking", "candidate")
    visit = Visit.objects.get()
    assert (visit.plate, visit.lookalike_key) == ("CA11DTE", lookalike_key("CA11DTE"))
    assert visit.entry_read.plate == "XQ77ZZK"  # the read itself keeps what the camera read
    # the exit reads the plate well: it ends that visit, and the car park is empty again
    leaving = decide(device, "OUT", "CA11DTE")
    assert (leaving["reason"], leaving["match"], leaving["booking"]) == ("departure", "exact", booking.reference)
    assert selectors.carpark_occupancy(carpark_id=carpark.id) == 0
    booking.refresh_from_db()
    assert booking.status == "departed"


def test_a_permit_matched_by_a_candidate_opens_the_visit_under_the_permits_plate(lanes):
    carpark, device = lanes
    day = timedelta(days=1)
    permit = Permit(
        carpark=carpark, holder="Staff", plate_raw="PE77 RMT", valid_from=now() - day, valid_until=now() + day
    )
    services.permit_save(permit=permit)
    entry = decide(device, "IN", "QQ11QQQ", score=0.4, candidates=[{"plate": "PE77RMT", "score": 0.9}])
    assert (entry["reason"], entry["match"]) == ("permit", "candidate")
    assert Visit.objects.get().plate == "PE77RMT"
    assert decide(device, "OUT", "PE77RMT")["reason"] == "permit"
    assert selectors.carpark_occupancy(carpark_id=carpark.id) == 0


def test_stale_reads_matched_by_a_candidate_pair_up(lanes):
    """An offline controller's buffered entry and exit, each with a misread main plate and the right candidate."""
    carpark, device = lanes
    booking = make_booking(carpark, "ST4CND", arrival=now() - timedelta(hours=3))
    t = now() - timedelta(hours=2)
    candidate = [{"plate": "ST4CND", "score": 0.9}]
    entry = decide(device, "IN", "XX11XXX", t, score=0.3, candidates=candidate, local_action="open", retransmit=True)
    assert (entry["reason"], entry["match"], entry["booking"]) == ("stale", "candidate", booking.reference)
    assert Visit.objects.get().plate == "ST4CND"
    leaving = t + timedelta(hours=1)
    decide(device, "OUT", "YY22YYY", leaving, score=0.3, candidates=candidate, local_action="open", retransmit=True)
    assert_the_one_visit_ended(carpark, booking, at=leaving, by="YY22YYY")
