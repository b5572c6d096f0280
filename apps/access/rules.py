"""The barrier decision rules of device-protocol.md section 3, as a pure function of a read and the facts about it.

Plain Python, no database: apps.access.decision loads the facts (the few rows that can matter for this
plate), calls `decide_entry` / `decide_exit`, and applies the outcome in the same transaction. Keeping the rules
free of I/O makes them table-testable and keeps the hot path's queries few and visible.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from apps.access.vocabulary import Action, Match, Reason
from apps.core.plates import lookalike_key

EXACT, LOOKALIKE, CANDIDATE = Match.EXACT, Match.LOOKALIKE, Match.CANDIDATE


@dataclass(frozen=True)
class Policy:
    """A car park's lane policies (CarPark fields of the same names)."""

    min_score: float = 0.7
    repeat_window_s: int = 15
    stale_after_s: int = 30
    early_arrival_min: int = 120
    grace_min: int = 60
    overstay_policy: str = "open_and_flag"  # or "hold"
    anti_passback: str = "hard"  # or "soft"


@dataclass(frozen=True)
class Read:
    """A plate read in normal form: `plate`/`key` are the main plate's normal form and look-alike key."""

    plate: str
    key: str
    score: float
    captured_at: datetime
    candidates: tuple[tuple[str, float], ...] = ()  # (normal form, score)

    def main_usable(self, policy: Policy) -> bool:
        return bool(self.plate) and self.score >= policy.min_score

    def usable_candidates(self, policy: Policy) -> set[str]:
        return {plate for plate, score in self.candidates if plate and score >= policy.min_score}

    def usable_plates(self, policy: Policy) -> set[str]:
        plates = self.usable_candidates(policy)
        if self.main_usable(policy):
            plates.add(self.plate)
        return plates


@dataclass(frozen=True)
class Plated:
    """Anything with a plate that a read can match: a permit, a booking's vehicle, an open visit, a blocked plate."""

    id: int
    plate: str
    key: str


@dataclass(frozen=True)
class PermitFact(Plated):
    pass


@dataclass(frozen=True)
class BookingFact(Plated):
    reference: str = ""
    status: str = "confirmed"
    arrival: datetime | None = None
    departure: datetime | None = None


@dataclass(frozen=True)
class VisitFact(Plated):
    entered_at: datetime | None = None
    booking_id: int | None = None
    booking_reference: str | None = None
    booking_departure: datetime | None = None
    permit_id: int | None = None


@dataclass(frozen=True)
class Facts:
    """Rows of this car park whose plate or look-alike key is one of the read's (loaded by the service)."""

    blocked: tuple[Plated, ...] = ()
    open_visits: tuple[VisitFact, ...] = ()
    permits: tuple[PermitFact, ...] = ()  # valid at captured_at
    bookings: tuple[BookingFact, ...] = ()  # any status, any time (one row per matching vehicle)


@dataclass
class Outcome:
    action: Action
    reason: Reason
    match: Match | None = None
    booking: BookingFact | VisitFact | None = None  # what gives the decision's booking reference
    booking_id: int | None = None
    permit_id: int | None = None
    vehicle_plate: str | None = None  # matched by a candidate: the vehicle's plate (not the read's main plate)
    open_visit: bool = False  # an entry: open a visit (with booking_id / permit_id), under vehicle_plate if set
    close_visit: VisitFact | None = None  # an exit: close this visit
    hold_visit: VisitFact | None = None  # overstay with policy `hold`: the visit stays open
    superseded_visit: VisitFact | None = None  # soft anti-passback: close this older visit
    overstay_minutes: int | None = None
    alert: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def booking_reference(self) -> str | None:
        if isinstance(self.booking, BookingFact):
            return self.booking.reference
        if isinstance(self.booking, VisitFact):
            return self.booking.booking_reference
        return None


def best_level[T: Plated](read: Read, policy: Policy, items: tuple[T, ...]) -> tuple[str | None, list[T]]:
    """The best level at which any item matches (exact main, look-alike main, exact candidate), and its items."""
    if read.main_usable(policy):
        exact = [item for item in items if item.plate == read.plate]
        if exact:
            return EXACT, exact
        lookalike = [item for item in items if item.key == read.key]
        if lookalike:
            return LOOKALIKE, lookalike
    candidates = read.usable_candidates(policy)
    matched = [item for item in items if item.plate in candidates]
    return (CANDIDATE, matched) if matched else (None, [])


def _distinct_by_id[T: Plated](items: list[T]) -> list[T]:
    seen: dict[int, T] = {}
    for item in items:
        seen.setdefault(item.id, item)
    return list(seen.values())


def is_eligible(booking: BookingFact, at: datetime, policy: Policy) -> bool:
    """Confirmed, and `at` within [arrival - early_arrival, departure]."""
    early = timedelta(minutes=policy.early_arrival_min)
    return booking.status == "confirmed" and booking.arrival - early <= at <= booking.departure


def ineligible_reason(booking: BookingFact, at: datetime, policy: Policy) -> Reason:
    """Entry rule 5 for the matching booking nearest in arrival: why it cannot open the barrier."""
    if at < booking.arrival - timedelta(minutes=policy.early_arrival_min):
        return Reason.TOO_EARLY
    if booking.status == "cancelled":
        return Reason.CANCELLED
    if booking.status == "departed":
        return Reason.ALREADY_USED
    if at > booking.departure:
        return Reason.EXPIRED
    # Within its window but neither confirmed, cancelled nor departed: `arrived` (its visit was closed by hand)
    # or `no_show`. The spec lists no code for it; it has been used, so:
    return Reason.ALREADY_USED


def entry_match(read: Read, policy: Policy, facts: Facts) -> Outcome | None:
    """Entry rules 4 and 5 (permits, then bookings): the outcome if a permit or a booking decides, else None."""
    at = read.captured_at
    level, permits = best_level(read, policy, facts.permits)
    if permits and len({p.plate for p in permits}) == 1:
        permit = permits[0]
        return Outcome(
            Action.OPEN, Reason.PERMIT, match=level, permit_id=permit.id, vehicle_plate=_if_candidate(level, permit),
            open_visit=True,
        )  # fmt: skip
    eligible = tuple(b for b in facts.bookings if is_eligible(b, at, policy))
    level, bookings = best_level(read, policy, eligible)
    bookings = _distinct_by_id(bookings)
    if len(bookings) == 1:
        booking = bookings[0]
        return Outcome(
            Action.OPEN, Reason.BOOKING, match=level, booking=booking, booking_id=booking.id,
            vehicle_plate=_if_candidate(level, booking), open_visit=True,
        )  # fmt: skip
    if len(bookings) > 1:
        return Outcome(Action.DENY, Reason.AMBIGUOUS, match=level, alert=True)
    matching = _all_levels(read, policy, facts.bookings)
    if matching:
        nearest = min(matching, key=lambda b: abs((b.arrival - at).total_seconds()))
        return Outcome(Action.DENY, ineligible_reason(nearest, at, policy), booking=nearest, alert=True)
    return None


def _if_candidate(level: str | None, item: Plated) -> str | None:
    """The plate a visit must carry when a candidate matched: the main plate was misread, and the exit, reading the
    plate well, looks for the vehicle's own plate (exact or look-alike)."""
    return item.plate if level == CANDIDATE else None


def _all_levels[T: Plated](read: Read, policy: Policy, items: tuple[T, ...]) -> list[T]:
    plates = read.usable_plates(policy)
    main_key = read.key if read.main_usable(policy) else None
    return [item for item in items if item.plate in plates or item.key == main_key]


def decide_entry(read: Read, policy: Policy, facts: Facts) -> Outcome:
    """Entry lane rules 1-6, in order."""
    plates = read.usable_plates(policy)
    if not plates:
        return Outcome(Action.DENY, Reason.LOW_CONFIDENCE, alert=True)
    keys = {lookalike_key(p) for p in plates}
    if any(b.plate in plates or b.key in keys for b in facts.blocked):
        return Outcome(Action.DENY, Reason.BLOCKED, alert=True)
    superseded = None
    if read.main_usable(policy):
        inside = [v for v in facts.open_visits if v.plate == read.plate or v.key == read.key]
        if inside:
            if policy.anti_passback != "soft":
                return Outcome(Action.DENY, Reason.ALREADY_INSIDE, alert=True)
            superseded = max(inside, key=lambda v: v.entered_at)
    outcome = entry_match(read, policy, facts) or Outcome(Action.DENY, Reason.UNKNOWN_VEHICLE, alert=True)
    if superseded is not None:
        outcome.superseded_visit = superseded
        outcome.alert = True  # soft anti-passback: staff are told the old visit was closed
        outcome.notes.append("soft anti-passback: an open visit of this vehicle was closed")
    return outcome


def decide_exit(read: Read, policy: Policy, facts: Facts) -> Outcome:
    """Exit lane rules 1-3, in order."""
    if not read.usable_plates(policy):
        return Outcome(Action.DENY, Reason.LOW_CONFIDENCE, alert=True)
    level, visits = best_level(read, policy, facts.open_visits)
    if len(visits) > 1:
        return Outcome(Action.OPEN, Reason.AMBIGUOUS, match=level, alert=True)
    if not visits:
        return Outcome(Action.OPEN, Reason.NO_VISIT, alert=True)
    visit = visits[0]
    minutes = overstay_minutes(visit, read.captured_at, policy)
    if minutes is not None:
        if policy.overstay_policy == "hold":
            return Outcome(
                Action.DENY,
                Reason.OVERSTAY,
                match=level,
                booking=visit,
                hold_visit=visit,
                overstay_minutes=minutes,
                alert=True,
            )
        return Outcome(
            Action.OPEN,
            Reason.OVERSTAY,
            match=level,
            booking=visit,
            close_visit=visit,
            overstay_minutes=minutes,
            alert=True,
        )
    reason = Reason.PERMIT if visit.permit_id else Reason.DEPARTURE
    return Outcome(Action.OPEN, reason, match=level, booking=visit, close_visit=visit)


def overstay_minutes(visit: VisitFact, at: datetime, policy: Policy) -> int | None:
    """Whole minutes past the booking's departure + grace (at least 1), or None when it is not an overstay."""
    if visit.booking_departure is None:
        return None
    limit = visit.booking_departure + timedelta(minutes=policy.grace_min)
    if at <= limit:
        return None
    return max(1, int((at - limit).total_seconds() // 60))
