"""The lane protocol's words (docs/device-protocol.md 3): what a decision does, why, and how its plate matched.

One definition for the codec (what a controller may send: `local_action`), the rules (what they decide) and the
frames (what is sent). They are `StrEnum`s, so a member is its string wherever a string goes (JSON, the database,
comparisons). Plain Python: the codec imports it, and the codec may not import Django.
"""

from datetime import UTC, datetime, timedelta
from enum import StrEnum


class Action(StrEnum):
    OPEN = "open"
    DENY = "deny"
    NONE = "none"  # recorded only (a stale read)


class Match(StrEnum):
    EXACT = "exact"
    LOOKALIKE = "lookalike"
    CANDIDATE = "candidate"  # a usable candidate matched exactly


class Reason(StrEnum):
    BOOKING = "booking"
    PERMIT = "permit"
    REPEAT = "repeat"
    DEPARTURE = "departure"
    OVERSTAY = "overstay"
    NO_VISIT = "no_visit"
    AMBIGUOUS = "ambiguous"
    UNKNOWN_VEHICLE = "unknown_vehicle"
    LOW_CONFIDENCE = "low_confidence"
    BLOCKED = "blocked"
    ALREADY_INSIDE = "already_inside"
    TOO_EARLY = "too_early"
    CANCELLED = "cancelled"
    ALREADY_USED = "already_used"
    EXPIRED = "expired"
    STALE = "stale"


# What a controller may report it did while offline (device-protocol.md 5): nothing, or one of these.
LOCAL_ACTIONS = ("", Action.OPEN, Action.DENY)


# The window of times a device may send (device-protocol.md 2): a camera's clock may run a little fast, but nothing
# it saw is from before 2000 or from far ahead. Outside it a time is a bad message (the codec), never a stored read
# (the plate read's check constraint).
EARLIEST_TIME = datetime(2000, 1, 1, tzinfo=UTC)
MOST_AHEAD = timedelta(minutes=10)
