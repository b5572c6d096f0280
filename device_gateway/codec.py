"""The lane controller protocol's frames (device-protocol.md, version 1): parsing and validation.

Plain Python: no Django, no I/O. The consumer turns a ProtocolError into an `error` frame.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apps.access.vocabulary import EARLIEST_TIME, LOCAL_ACTIONS, MOST_AHEAD

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 64 * 1024


class ProtocolError(Exception):
    def __init__(self, code: str, detail: str, read_id: str | None = None):
        super().__init__(detail)
        self.code, self.detail, self.read_id = code, detail, read_id

    def frame(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "error", "code": self.code, "detail": self.detail}
        if self.read_id is not None:
            out["read_id"] = self.read_id
        return out


@dataclass(frozen=True)
class PlateRead:
    read_id: str
    lane: str
    plate: str
    score: float
    captured_at: datetime
    region: str = ""
    candidates: tuple[dict, ...] = ()
    vehicle: dict | None = None
    retransmit: bool = False
    local_action: str = ""


def decode(text: str) -> dict[str, Any]:
    if len(text.encode()) > MAX_FRAME_BYTES:
        raise ProtocolError("too_large", f"frame over {MAX_FRAME_BYTES} bytes")
    frame = loads(text)
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise ProtocolError("bad_message", "a frame is a JSON object with a string 'type'")
    return frame


def loads(text: str | bytes, what: str = "the frame") -> Any:
    """JSON from a device (a frame, a vendor's body). Refused as `bad_message`, never an exception that would be
    answered `retry`, HTTP 500 or WebSocket 1011: text that is not JSON; nesting deeper than the interpreter's
    recursion limit; any string (keys too) holding a NUL or a lone surrogate, which no database column can store,
    so such a read could only ever fail (and be resent)."""
    try:
        value = json.loads(text)
        # Both can only come from a JSON escape (\u0000, \ud800) in valid UTF-8 text, so most texts skip the walk.
        storable = "\\u" not in (text if isinstance(text, str) else text.decode(errors="replace")) or _storable(value)
    except ValueError as exc:
        raise ProtocolError("bad_message", f"{what} is not JSON: {exc}") from None
    except RecursionError:
        raise ProtocolError("bad_message", f"{what} is nested too deeply") from None
    if not storable:
        read_id = value.get("read_id") if isinstance(value, dict) else None
        raise ProtocolError(
            "bad_message", "strings may not hold NUL or lone surrogates", read_id if _storable(read_id) else None
        )
    return value


def _storable(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" not in value and (value.isascii() or _utf8(value))
    if isinstance(value, dict):
        return all(_storable(k) and _storable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_storable(item) for item in value)
    return True


def _utf8(value: str) -> bool:
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def encode(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"))


def parse_time(value: Any, field: str, read_id: str | None = None) -> datetime:
    if not isinstance(value, str):
        raise ProtocolError("bad_message", f"'{field}' must be an ISO 8601 string", read_id)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ProtocolError("bad_message", f"'{field}' is not ISO 8601: {value!r}", read_id) from None
    if parsed.tzinfo is None:
        raise ProtocolError("bad_message", f"'{field}' needs an offset (e.g. Z)", read_id)
    if not EARLIEST_TIME <= parsed <= datetime.now(UTC) + MOST_AHEAD:
        raise ProtocolError(
            "bad_message", f"'{field}' is before 2000 or more than 10 minutes ahead of the server: {value!r}", read_id
        )
    return parsed


def _optional(frame: dict[str, Any], name: str, kind: type | tuple[type, ...], read_id: str | None) -> Any:
    value = frame.get(name)
    if value is not None and (not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool)):
        raise ProtocolError("bad_message", f"'{name}' is ill-typed", read_id)
    return value


def _score(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1


def parse_candidates(value: Any, read_id: str) -> tuple[dict, ...]:
    """Candidates: a list of {"plate": str, "score": 0-1}; a candidate without a score is kept but never usable."""
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > 32:
        raise ProtocolError("bad_message", "'candidates' must be a list (at most 32)", read_id)
    out = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("plate"), str) or len(item["plate"]) > 32:
            raise ProtocolError("bad_message", "each candidate needs a 'plate' string", read_id)
        if "score" in item and not _score(item["score"]):
            raise ProtocolError("bad_message", "a candidate's 'score' must be a number from 0 to 1", read_id)
        out.append({"plate": item["plate"], "score": item.get("score")})
    return tuple(out)


def parse_plate_read(frame: dict[str, Any]) -> PlateRead:
    read_id = frame.get("read_id")
    if not isinstance(read_id, str) or not 1 <= len(read_id) <= 64:
        raise ProtocolError("bad_message", "'read_id' must be a string of 1-64 characters")
    for name in ("lane", "plate"):
        if not isinstance(frame.get(name), str) or not frame[name] or len(frame[name]) > 32:
            raise ProtocolError("bad_message", f"'{name}' must be a non-empty string (at most 32)", read_id)
    if not _score(frame.get("score")):
        raise ProtocolError("bad_message", "'score' must be a number from 0 to 1", read_id)
    local_action = _optional(frame, "local_action", str, read_id) or ""
    if local_action not in LOCAL_ACTIONS:
        raise ProtocolError("bad_message", "'local_action' must be 'open' or 'deny'", read_id)
    return PlateRead(
        read_id=read_id,
        lane=frame["lane"],
        plate=frame["plate"],
        score=float(frame["score"]),
        captured_at=parse_time(frame.get("captured_at"), "captured_at", read_id),
        region=(_optional(frame, "region", str, read_id) or "")[:16],
        candidates=parse_candidates(frame.get("candidates"), read_id),
        vehicle=_optional(frame, "vehicle", dict, read_id),
        retransmit=_optional(frame, "retransmit", bool, read_id) is True,
        local_action=local_action,
    )


@dataclass(frozen=True)
class Hello:
    protocol: int
    firmware: str | None = None
    buffered: int | None = None


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is not 1


def parse_hello(frame: dict[str, Any]) -> Hello:
    """`{"type": "hello", "protocol": 1, "firmware": "1.4.2", "buffered": 0}`.

    A missing or ill-typed `protocol` is a `bad_message` like any other field; only an integer other than 1 is
    `unsupported_protocol` (the consumer then closes with 4002). The other fields are checked only for version 1."""
    protocol = frame.get("protocol")
    if not _integer(protocol):
        raise ProtocolError("bad_message", "'protocol' must be an integer")
    if protocol != PROTOCOL_VERSION:
        raise ProtocolError("unsupported_protocol", f"this server speaks protocol {PROTOCOL_VERSION}")
    firmware = _optional(frame, "firmware", str, None)
    buffered = frame.get("buffered")
    if buffered is not None and (not _integer(buffered) or buffered < 0):
        raise ProtocolError("bad_message", "'buffered' must be a non-negative integer")
    return Hello(protocol=protocol, firmware=firmware, buffered=buffered)


BARRIER_STATES = ("open", "closed", "fault")
COMMAND_STATUSES = ("done", "failed", "expired")


def parse_heartbeat(frame: dict[str, Any]) -> dict[str, str]:
    """`{"type": "heartbeat", "barriers": {"N-IN": "closed"}}` -> the barrier states (may be empty)."""
    barriers = frame.get("barriers", {})
    if not isinstance(barriers, dict) or not all(
        isinstance(lane, str) and state in BARRIER_STATES for lane, state in barriers.items()
    ):
        raise ProtocolError("bad_message", "'barriers' maps lane codes to open, closed or fault")
    return barriers


def parse_sent_at(frame: dict[str, Any]) -> datetime | None:
    """A heartbeat's optional `sent_at`: the controller's clock when it sent the frame (its offset is measured)."""
    return None if frame.get("sent_at") is None else parse_time(frame["sent_at"], "sent_at")


@dataclass(frozen=True)
class CommandResult:
    command_id: str
    status: str
    detail: str = ""


def parse_command_result(frame: dict[str, Any]) -> CommandResult:
    command_id, status = frame.get("command_id"), frame.get("status")
    if not isinstance(command_id, str) or not 1 <= len(command_id) <= 32:
        raise ProtocolError("bad_message", "'command_id' must be a string of 1-32 characters")
    if status not in COMMAND_STATUSES:
        raise ProtocolError("bad_message", "'status' must be done, failed or expired")
    detail = frame.get("detail") or ""
    if not isinstance(detail, str):
        raise ProtocolError("bad_message", "'detail' must be a string")
    return CommandResult(command_id=command_id, status=status, detail=detail[:500])
