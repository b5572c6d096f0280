"""The decision rules (device-protocol.md 3), table-driven on the pure engine: no database."""

from datetime import UTC, datetime, timedelta

import pytest

from apps.access import rules
from apps.access.rules import BookingFact, Facts, PermitFact, Plated, Policy, Read, VisitFact
from apps.access.vocabulary import LOCAL_ACTIONS, Action, Match, Reason
from apps.core.plates import lookalike_key
from device_gateway import codec
from tests.support import ROOT

T = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
POLICY = Policy()


def read(plate="AB12CDE", score=0.93, candidates=(), at=T) -> Read:
    return Read(plate=plate, key=lookalike_key(plate), score=score, captured_at=at, candidates=tuple(candidates))


def booking(id=1, plate="AB12CDE", status="confirmed", arrival=T - H, departure=T + 48 * H, ref=None) -> BookingFact:
    return BookingFact(
        id=id, plate=plate, key=lookalike_key(plate), reference=ref or f"PG-{id}", status=status,
        arrival=arrival, departure=departure,
    )  # fmt: skip


def visit(id=1, plate="AB12CDE", booking_id=None, departure=None, permit_id=None, entered=T - 2 * H) -> VisitFact:
    return VisitFact(
        id=id, plate=plate, key=lookalike_key(plate), entered_at=entered, booking_id=booking_id,
        booking_reference=f"PG-{booking_id}" if booking_id else None, booking_departure=departure,
        permit_id=permit_id,
    )  # fmt: skip


def permit(id=1, plate="AB12CDE") -> PermitFact:
    return PermitFact(id=id, plate=plate, key=lookalike_key(plate))


def blocked(plate) -> Plated:
    return Plated(id=9, plate=plate, key=lookalike_key(plate))


ENTRY_CASES = [
    # (name, read, facts, policy, expected (action, reason, match, booking ref))
    (
        "low score, no candidates",
        read(score=0.5),
        Facts(bookings=(booking(),)),
        POLICY,
        ("deny", "low_confidence", None, None),
    ),
    (
        "low score, usable candidate matches",
        read(plate="AB12CDF", score=0.5, candidates=[("AB12CDE", 0.8)]),
        Facts(bookings=(booking(),)),
        POLICY,
        ("open", "booking", "candidate", "PG-1"),
    ),
    (
        "candidate below min_score is not usable",
        read(score=0.5, candidates=[("AB12CDE", 0.6)]),
        Facts(),
        POLICY,
        ("deny", "low_confidence", None, None),
    ),
    (
        "blocked exact",
        read(),
        Facts(blocked=(blocked("AB12CDE"),), bookings=(booking(),)),
        POLICY,
        ("deny", "blocked", None, None),
    ),
    (
        "blocked look-alike",
        read(plate="A812CDE"),
        Facts(blocked=(blocked("AB12CDE"),)),
        POLICY,
        ("deny", "blocked", None, None),
    ),
    (
        "blocked via a usable candidate",
        read(candidates=[("ZZ99ZZZ", 0.8)]),
        Facts(blocked=(blocked("ZZ99ZZZ"),)),
        POLICY,
        ("deny", "blocked", None, None),
    ),
    (
        "already inside (hard)",
        read(),
        Facts(open_visits=(visit(),), bookings=(booking(),)),
        POLICY,
        ("deny", "already_inside", None, None),
    ),
    (
        "already inside by look-alike",
        read(plate="AB12CD0"),
        Facts(open_visits=(visit(plate="AB12CDO"),)),
        POLICY,
        ("deny", "already_inside", None, None),
    ),
    (
        "soft anti-passback goes on",
        read(),
        Facts(open_visits=(visit(),), bookings=(booking(),)),
        Policy(anti_passback="soft"),
        ("open", "booking", "exact", "PG-1"),
    ),
    (
        "permit exact",
        read(),
        Facts(permits=(permit(),), bookings=(booking(),)),
        POLICY,
        ("open", "permit", "exact", None),
    ),
    (
        "permit look-alike",
        read(plate="A812CDE"),
        Facts(permits=(permit(),)),
        POLICY,
        ("open", "permit", "lookalike", None),
    ),
    ("booking exact", read(), Facts(bookings=(booking(),)), POLICY, ("open", "booking", "exact", "PG-1")),
    (
        "booking look-alike (O/0, I/1, B/8, S/5, Z/2, G/6)",
        read(plate="A8I2CDE"),
        Facts(bookings=(booking(),)),
        POLICY,
        ("open", "booking", "lookalike", "PG-1"),
    ),
    (
        "exact beats look-alike",
        read(),
        Facts(bookings=(booking(1, "A812CDE"), booking(2, "AB12CDE"))),
        POLICY,
        ("open", "booking", "exact", "PG-2"),
    ),
    (
        "two bookings at the best level: ambiguous",
        read(),
        Facts(bookings=(booking(1), booking(2))),
        POLICY,
        ("deny", "ambiguous", "exact", None),
    ),
    (
        "two look-alike bookings: ambiguous",
        read(plate="AB12CDE"),
        Facts(bookings=(booking(1, "A812CDE"), booking(2, "AB12C0E"))),
        POLICY,
        ("deny", "ambiguous", "lookalike", None),
    ),
    (
        "a booking with two matching vehicles counts once",
        read(),
        Facts(bookings=(booking(1), booking(1, "AB12CD0"))),
        POLICY,
        ("open", "booking", "exact", "PG-1"),
    ),
    (
        "early arrival within 120 min",
        read(),
        Facts(bookings=(booking(arrival=T + 119 * timedelta(minutes=1)),)),
        POLICY,
        ("open", "booking", "exact", "PG-1"),
    ),
    ("too early", read(), Facts(bookings=(booking(arrival=T + 3 * H),)), POLICY, ("deny", "too_early", None, "PG-1")),
    ("cancelled", read(), Facts(bookings=(booking(status="cancelled"),)), POLICY, ("deny", "cancelled", None, "PG-1")),
    (
        "departed: already used",
        read(),
        Facts(bookings=(booking(status="departed"),)),
        POLICY,
        ("deny", "already_used", None, "PG-1"),
    ),
    (
        "expired",
        read(),
        Facts(bookings=(booking(arrival=T - 72 * H, departure=T - H),)),
        POLICY,
        ("deny", "expired", None, "PG-1"),
    ),
    (
        "the ineligible booking nearest in arrival decides",
        read(),
        Facts(bookings=(booking(1, status="cancelled", arrival=T - 30 * H), booking(2, arrival=T + 5 * H))),
        POLICY,
        ("deny", "too_early", None, "PG-2"),
    ),
    (
        "eligible beats ineligible",
        read(),
        Facts(bookings=(booking(1, status="cancelled"), booking(2, "A812CDE"))),
        POLICY,
        ("open", "booking", "lookalike", "PG-2"),
    ),
    (
        "unknown vehicle",
        read(),
        Facts(bookings=(booking(plate="XY99XYZ"),)),
        POLICY,
        ("deny", "unknown_vehicle", None, None),
    ),
    (
        "custom min_score",
        read(score=0.75),
        Facts(bookings=(booking(),)),
        Policy(min_score=0.8),
        ("deny", "low_confidence", None, None),
    ),
    (
        "custom early arrival",
        read(),
        Facts(bookings=(booking(arrival=T + 3 * H),)),
        Policy(early_arrival_min=240),
        ("open", "booking", "exact", "PG-1"),
    ),
]


@pytest.mark.parametrize(
    ("name", "the_read", "facts", "policy", "expected"), ENTRY_CASES, ids=[c[0] for c in ENTRY_CASES]
)
def test_entry_rules(name, the_read, facts, policy, expected):
    outcome = rules.decide_entry(the_read, policy, facts)
    assert (outcome.action, outcome.reason, outcome.match, outcome.booking_reference) == expected
    assert_the_protocols_words(outcome)
    assert outcome.open_visit == (outcome.action == "open")
    assert outcome.alert == (outcome.action == "deny" or outcome.superseded_visit is not None)


EXIT_CASES = [
    ("low confidence", read(score=0.2), Facts(open_visits=(visit(),)), POLICY, ("deny", "low_confidence", None, None)),
    (
        "departure",
        read(),
        Facts(open_visits=(visit(booking_id=5, departure=T + H),)),
        POLICY,
        ("open", "departure", "exact", "PG-5"),
    ),
    ("permit holder", read(), Facts(open_visits=(visit(permit_id=3),)), POLICY, ("open", "permit", "exact", None)),
    (
        "look-alike visit",
        read(plate="A812CDE"),
        Facts(open_visits=(visit(),)),
        POLICY,
        ("open", "departure", "lookalike", None),
    ),
    (
        "candidate visit",
        read(plate="ZZ1", candidates=[("AB12CDE", 0.9)]),
        Facts(open_visits=(visit(),)),
        POLICY,
        ("open", "departure", "candidate", None),
    ),
    (
        "two visits at the best level",
        read(),
        Facts(open_visits=(visit(1), visit(2))),
        POLICY,
        ("open", "ambiguous", "exact", None),
    ),
    ("no visit", read(), Facts(), POLICY, ("open", "no_visit", None, None)),
    (
        "within grace",
        read(),
        Facts(open_visits=(visit(booking_id=5, departure=T - 59 * timedelta(minutes=1)),)),
        POLICY,
        ("open", "departure", "exact", "PG-5"),
    ),
    (
        "overstay, open and flag",
        read(),
        Facts(open_visits=(visit(booking_id=5, departure=T - 2 * H),)),
        POLICY,
        ("open", "overstay", "exact", "PG-5"),
    ),
    (
        "overstay, hold",
        read(),
        Facts(open_visits=(visit(booking_id=5, departure=T - 2 * H),)),
        Policy(overstay_policy="hold"),
        ("deny", "overstay", "exact", "PG-5"),
    ),
]


@pytest.mark.parametrize(
    ("name", "the_read", "facts", "policy", "expected"), EXIT_CASES, ids=[c[0] for c in EXIT_CASES]
)
def test_exit_rules(name, the_read, facts, policy, expected):
    outcome = rules.decide_exit(the_read, policy, facts)
    assert (outcome.action, outcome.reason, outcome.match, outcome.booking_reference) == expected
    assert_the_protocols_words(outcome)


def assert_the_protocols_words(outcome: rules.Outcome) -> None:
    """The rules speak the vocabulary the codec and the frames share, not strings of their own."""
    assert isinstance(outcome.action, Action) and isinstance(outcome.reason, Reason)
    assert outcome.match is None or isinstance(outcome.match, Match)


def test_the_vocabulary_is_the_published_protocols():
    """Every action, reason and match level is one the published protocol names (device-protocol.md 3), and the
    codec accepts exactly the vocabulary's local actions."""
    protocol = (ROOT / "docs" / "device-protocol.md").read_text()
    for word in [*Action, *Reason, *Match]:
        assert f"`{word}`" in protocol, word
    frame = {"type": "plate_read", "read_id": "r1", "lane": "IN", "plate": "AB12CDE", "score": 0.9,
             "captured_at": datetime.now(UTC).isoformat()}  # fmt: skip
    assert [codec.parse_plate_read(frame | {"local_action": a}).local_action for a in LOCAL_ACTIONS] == list(
        LOCAL_ACTIONS
    )
    with pytest.raises(codec.ProtocolError):
        codec.parse_plate_read(frame | {"local_action": "none"})


def test_exit_effects():
    overstay = rules.decide_exit(read(), POLICY, Facts(open_visits=(visit(booking_id=5, departure=T - 2 * H),)))
    assert overstay.close_visit.id == 1 and overstay.overstay_minutes == 60 and overstay.alert
    held = rules.decide_exit(
        read(), Policy(overstay_policy="hold"), Facts(open_visits=(visit(booking_id=5, departure=T - 2 * H),))
    )
    assert held.close_visit is None and held.hold_visit.id == 1
    ambiguous = rules.decide_exit(read(), POLICY, Facts(open_visits=(visit(1), visit(2))))
    assert ambiguous.close_visit is None and ambiguous.alert
    assert rules.decide_exit(read(), POLICY, Facts()).alert  # no_visit alerts staff


def test_soft_anti_passback_closes_the_old_visit_and_alerts():
    outcome = rules.decide_entry(read(), Policy(anti_passback="soft"), Facts(open_visits=(visit(7),)))
    assert (outcome.action, outcome.reason) == ("deny", "unknown_vehicle")
    assert outcome.superseded_visit.id == 7 and outcome.alert


@pytest.mark.parametrize(
    ("the_read", "facts", "vehicle_plate"),
    [
        (read(), Facts(bookings=(booking(),)), None),  # exact: the read's plate is the vehicle's
        (read(plate="A812CDE"), Facts(bookings=(booking(),)), None),  # look-alike: same key, the exit finds it
        (read(plate="XY99ZZZ", score=0.4, candidates=[("AB12CDE", 0.8)]), Facts(bookings=(booking(),)), "AB12CDE"),
        (read(plate="XY99ZZZ", candidates=[("AB12CDE", 0.8)]), Facts(permits=(permit(),)), "AB12CDE"),
    ],
    ids=["exact", "lookalike", "candidate booking", "candidate permit (main usable)"],
)
def test_a_candidate_match_names_the_vehicles_plate_for_its_visit(the_read, facts, vehicle_plate):
    outcome = rules.decide_entry(the_read, POLICY, facts)
    assert outcome.open_visit and outcome.vehicle_plate == vehicle_plate
