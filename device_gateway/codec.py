"""The lane controller protocol's frames (device-protocol.md, version 1): parsing and validation.

Plain Python: no Django, no I/O. The consumer turns a ProtocolError into an `error` frame.
"""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

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
    try:
        frame = json.loads(text)
    except ValueError as exc:
        raise ProtocolError("bad_message", f"not JSON: {exc}") from None
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise ProtocolError("bad_message", "a frame is a JSON object with a string 'type'")
    return frame


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
    return parsed


def parse_plate_read(frame: dict[str, Any]) -> PlateRead:
    read_id = frame.get("read_id")
    if not isinstance(read_id, str) or not 1 <= len(read_id) <= 64:
        raise ProtocolError("bad_message", "'read_id' must be a string of 1-64 characters")
    for name in ("lane", "plate"):
        if not isinstance(frame.get(name), str) or not frame[name]:
            raise ProtocolError("bad_message", f"'{name}' must be a non-empty string", read_id)
    score = frame.get("score")
    if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
        raise ProtocolError("bad_message", "'score' must be a number from 0 to 1", read_id)
    return PlateRead(
        read_id=read_id,
        lane=frame["lane"],
        plate=frame["plate"],
        score=float(score),
        captured_at=parse_time(frame.get("captured_at"), "captured_at", read_id),
        region=frame.get("region") if isinstance(frame.get("region"), str) else "",
        candidates=tuple(c for c in frame.get("candidates") or () if isinstance(c, dict)),
        vehicle=frame.get("vehicle") if isinstance(frame.get("vehicle"), dict) else None,
        retransmit=frame.get("retransmit") is True,
        local_action=frame.get("local_action") if frame.get("local_action") in ("open", "deny") else "",
    )
