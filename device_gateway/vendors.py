"""Vendor camera payloads -> protocol plate reads (device-protocol.md 7). Plain Python: parsing only.

- Plate Recognizer Stream `recognition` webhook (JSON, or the `json` field of a multipart form).
- Hikvision ISAPI `EventNotificationAlert` with eventType ANPR (XML, or the `anpr.xml` part of a multipart form),
  parsed with defusedxml (no entity expansion, no external entities).
"""

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from defusedxml import ElementTree

from device_gateway.codec import PlateRead, ProtocolError, loads, parse_time


@dataclass(frozen=True)
class VendorRead:
    """A read before its lane is known: `source` is the camera id / channel that the device's settings map."""

    source: str
    read: PlateRead
    timed: bool = True  # the payload gave the capture time (else it is the time of receipt)


def _read_id(*parts: str) -> str:
    """A stable read_id (1-64 chars) from the vendor's ids, so a re-posted event is a duplicate."""
    text = ":".join(parts)
    return text if len(text) <= 64 else "h-" + hashlib.sha256(text.encode()).hexdigest()[:62]


# --- Plate Recognizer -----------------------------------------------------------------------------------------


def platerecognizer_reads(body: Any) -> list[VendorRead]:
    """A Stream webhook: one read per result. The read_id comes from `hook.id` (the camera, in Stream), the
    event's timestamp and the result's index: `hook.id` alone repeats for every event of a camera."""
    if isinstance(body, str | bytes):
        body = loads(body, "the webhook body")
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise ProtocolError("bad_message", "a Plate Recognizer webhook has 'hook' and 'data'")
    hook, data = body.get("hook") or {}, body["data"]
    camera = str(data.get("camera_id") or hook.get("id") or "")
    timestamp = data.get("timestamp")
    captured_at = parse_time(timestamp, "data.timestamp") if timestamp else datetime.now(UTC)
    results = data.get("results")
    if not isinstance(results, list):
        raise ProtocolError("bad_message", "'data.results' must be a list")
    reads = []
    for index, result in enumerate(results):
        plate, score = _pr_plate(result)
        if not plate:
            continue
        read_id = _read_id(str(hook.get("id") or camera), str(timestamp or captured_at.isoformat()), str(index))
        reads.append(
            VendorRead(
                source=camera,
                timed=bool(timestamp),
                read=PlateRead(
                    read_id=read_id,
                    lane="",
                    plate=plate[:32],
                    score=score,
                    captured_at=captured_at,
                    region=_pr_region(result),
                    candidates=tuple(
                        {"plate": c["plate"], "score": c.get("score")}
                        for c in result.get("candidates") or ()
                        if isinstance(c, dict) and isinstance(c.get("plate"), str)
                    ),
                    vehicle=_pr_vehicle(result),
                ),
            )
        )
    return reads


def _pr_plate(result: Any) -> tuple[str, float]:
    """The plate and its score, in either Stream result shape ("plate" string or "vehicle" object format)."""
    if not isinstance(result, dict):
        return "", 0.0
    plate, score = result.get("plate"), result.get("score")
    if isinstance(plate, dict):  # vehicle format: plate.props.plate[0] = {value, score}
        best = ((plate.get("props") or {}).get("plate") or [{}])[0]
        plate, score = best.get("value"), best.get("score")
    if not isinstance(plate, str):
        return "", 0.0
    score = float(score) if isinstance(score, int | float) and not isinstance(score, bool) else 0.0
    return plate, min(max(score, 0.0), 1.0)


def _pr_region(result: dict) -> str:
    region = result.get("region")
    if isinstance(region, dict):
        region = region.get("code")
    return region[:16] if isinstance(region, str) else ""


def _pr_vehicle(result: dict) -> dict | None:
    vehicle: dict[str, str] = {}
    if isinstance(result.get("vehicle"), dict) and isinstance(result["vehicle"].get("type"), str):
        vehicle["type"] = result["vehicle"]["type"]
    make_model = result.get("model_make")
    if isinstance(make_model, list) and make_model and isinstance(make_model[0], dict):
        vehicle["make"], vehicle["model"] = str(make_model[0].get("make", "")), str(make_model[0].get("model", ""))
    colours = result.get("color")
    if isinstance(colours, list) and colours and isinstance(colours[0], dict):
        vehicle["color"] = str(colours[0].get("color", ""))
    return vehicle or None


# --- Hikvision ------------------------------------------------------------------------------------------------


def hikvision_reads(xml: bytes | str) -> list[VendorRead]:
    """An EventNotificationAlert: one read when it is an ANPR event, none for other events (heartbeats...)."""
    try:
        root = ElementTree.fromstring(xml)
    except Exception as exc:  # ParseError, or defusedxml's refusal of entities/DTDs
        raise ProtocolError("bad_message", f"not a well-formed, safe XML document: {exc}") from None
    fields = {_local(el.tag): el for el in root}
    if _local(root.tag) != "EventNotificationAlert":
        raise ProtocolError("bad_message", "not an EventNotificationAlert")
    if _text(fields.get("eventType")).upper() != "ANPR" or "ANPR" not in fields:
        return []
    anpr = {_local(el.tag): el for el in fields["ANPR"]}
    uuid = _text(fields.get("UUID"))
    plate = _text(anpr.get("licensePlate"))
    if not uuid or not plate:
        raise ProtocolError("bad_message", "an ANPR alert needs UUID and ANPR/licensePlate")
    try:
        score = min(max(float(_text(anpr.get("confidenceLevel")) or 0) / 100, 0.0), 1.0)
    except ValueError:
        raise ProtocolError("bad_message", "'confidenceLevel' must be a number") from None
    when = _text(fields.get("dateTime"))
    captured_at = parse_time(when, "dateTime") if when else datetime.now(UTC)
    vehicle = {}
    info = {_local(el.tag): el for el in anpr["vehicleInfo"]} if "vehicleInfo" in anpr else {}
    if _text(info.get("color")):
        vehicle["color"] = _text(info.get("color"))
    if _text(anpr.get("vehicleType")):
        vehicle["type"] = _text(anpr.get("vehicleType"))
    read = PlateRead(
        read_id=_read_id(uuid),
        lane="",
        plate=plate[:32],
        score=score,
        captured_at=captured_at,
        region=_text(fields.get("countryAbbreviation"))[:16],
        vehicle=vehicle or None,
        retransmit=_text(fields.get("isDataRetransmission")).lower() == "true",
    )
    return [VendorRead(source=_text(fields.get("channelID")), read=read, timed=bool(when))]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _text(element) -> str:
    return (element.text or "").strip() if element is not None else ""
