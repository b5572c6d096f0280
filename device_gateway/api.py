"""HTTP endpoints for lane controllers and cameras (device-protocol.md 1 and 7), under /api/device/v1/."""

import base64
import binascii
import contextlib
import math
import time

from django.core.cache import cache
from django.db import DatabaseError
from django.utils import timezone
from ninja import NinjaAPI, Schema, Status

from apps.access import cameras, clock, decision, selectors, services
from apps.core import metrics
from device_gateway import vendors
from device_gateway.codec import ProtocolError, loads
from device_gateway.executor import run_db

api = NinjaAPI(urls_namespace="device-api", title="Parkgate lane controller API", version="1", docs_url=None)

ENROL_LIMIT_PER_MINUTE = 60  # per client address: enrolment is rare; codes carry 256 bits anyway


# The enrolment body is parsed by `_enrol_body`, not by ninja (this schema only documents it): a missing or ill-typed
# code is answered like any other invalid code (400), never with a 422 that the protocol does not know.
class EnrolIn(Schema):
    """An enrolment request (device-protocol.md 1.2)."""

    code: str
    serial: str = ""
    model: str = ""


class EnrolOut(Schema):
    device_id: str
    token: str
    ws_path: str
    carpark: str
    lanes: list[str]


class Error(Schema):
    error: str
    detail: str | None = None


def _client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR") or "?"


def _rate_limited(bucket: str, limit: int) -> int | None:
    """A fixed one-minute window in the shared cache; the seconds to wait when over `limit`, else None."""
    now = time.time()
    key = f"device-rate:{bucket}:{int(now // 60)}"
    try:
        cache.add(key, 0, timeout=65)
        count = cache.incr(key)
    except Exception:  # the cache (Redis) is down: do not lock controllers out
        return None
    return max(1, math.ceil(60 - now % 60)) if count > limit else None


class BadEnrolment(Exception):
    def __init__(self, error: str, detail: str | None = None):
        super().__init__(error)
        self.body = {"error": error, "detail": detail}


def _enrol_body(raw: bytes) -> EnrolIn:
    """The body as device-protocol.md 1.2 has it. Not JSON, or not an object: `bad_message` (the protocol's word for a
    frame that is not one); a missing, empty or non-string code: `invalid_code`, as for an unknown one."""
    try:
        body = loads(raw, "the body")
    except ProtocolError as exc:
        raise BadEnrolment(exc.code, exc.detail) from None
    if not isinstance(body, dict):
        raise BadEnrolment("bad_message", 'the body is a JSON object: {"code": "...", "serial": "...", "model": "..."}')
    code = body.get("code")
    if not isinstance(code, str) or not code:
        raise BadEnrolment("invalid_code")
    fields = {}
    for name in ("serial", "model"):
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise BadEnrolment("bad_message", f"'{name}' must be a string")
        fields[name] = value or ""
    return EnrolIn(code=code, **fields)


@api.post(
    "/enrol",
    response={201: EnrolOut, 400: Error, 429: Error, 503: Error},
    auth=None,
    exclude_none=True,
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": EnrolIn.model_json_schema()}}}
    },
)
async def enrol(request):
    """Exchange a one-time enrolment code for the device's token. Any bad code, or none, is `400 invalid_code`."""
    wait = await run_db(_rate_limited, bucket=f"enrol:{_client_ip(request)}", limit=ENROL_LIMIT_PER_MINUTE)
    if wait is not None:  # before the body is read: malformed attempts count too
        response = api.create_response(request, {"error": "rate_limited"}, status=429)
        response["Retry-After"] = str(wait)
        return response
    try:
        body = _enrol_body(request.body)
    except BadEnrolment as exc:
        return Status(400, exc.body)
    try:
        enrolled = await run_db(services.device_enrol, code=body.code, serial=body.serial, model=body.model)
    except services.InvalidEnrolmentCode:
        return Status(400, {"error": "invalid_code"})
    except DatabaseError:  # the code is not used up: the controller tries again later, as after an error `retry`
        response = api.create_response(
            request, {"error": "retry", "detail": "cannot enrol now, try again later"}, status=503
        )
        response["Retry-After"] = "30"
        return response
    return Status(
        201,
        {
            "device_id": enrolled.device_id,
            "token": enrolled.token,
            "ws_path": "/ws/device/",
            "carpark": enrolled.carpark,
            "lanes": enrolled.lanes,
        },
    )


# --- Vendor adapters (device-protocol.md 7) -------------------------------------------------------------------


def device_token(request) -> str:
    """`Authorization: Bearer <token>`, or Basic with the token as password (any user name)."""
    kind, _, value = request.headers.get("Authorization", "").partition(" ")
    if kind.lower() == "bearer":
        return value.strip()
    if kind.lower() == "basic":
        try:
            return base64.b64decode(value.strip(), validate=True).decode().partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return ""
    return ""


async def _decide_vendor_reads(request, parse, mapping_key: str):
    """One decision per read of a mapped camera (200). A read of an unmapped camera is kept for staff and listed
    under `kept` (202: accepted, nothing decided; a 2xx, so the camera does not post again what is already kept)."""
    try:
        device = await run_db(selectors.device_for_token, token=device_token(request))
    except DatabaseError:
        return api.create_response(request, {"error": "retry"}, status=503)
    if device is None:
        response = api.create_response(request, {"error": "unauthorized"}, status=401)
        response["WWW-Authenticate"] = 'Basic realm="parkgate"'
        return response
    try:
        reads = parse(request)
    except ProtocolError as exc:
        return api.create_response(request, {"error": exc.code, "detail": exc.detail}, status=400)
    answers, kept = [], []
    for vendor_read in reads:
        read, source = vendor_read.read, str(vendor_read.source)
        lane = cameras.lane_for_camera(device.vendor, device.lanes, source, mapping_key)
        if vendor_read.timed and not read.retransmit:
            await _clock_measured(device.id, read.captured_at)
        try:
            if lane is None:
                await run_db(
                    cameras.unmapped_read_keep, device_id=device.id, camera=source, read_id=read.read_id,
                    plate=read.plate, score=read.score, captured_at=read.captured_at, candidates=list(read.candidates),
                    region=read.region, vehicle=read.vehicle, retransmit=read.retransmit,
                )  # fmt: skip
                kept.append({"read_id": read.read_id, "camera": source})
                continue
            started = time.perf_counter()
            decided = await decision.decide(
                device_id=device.id,
                read_id=read.read_id,
                lane_id=device.lane_ids[lane],
                plate=read.plate,
                score=read.score,
                captured_at=read.captured_at,
                candidates=list(read.candidates),
                region=read.region,
                vehicle=read.vehicle,
                retransmit=read.retransmit,
                with_command=False,
            )
        except DatabaseError:
            answers.append(ProtocolError("retry", "cannot decide now, post again later", read.read_id).frame())
            continue
        metrics.decision_observed(decided, seconds=time.perf_counter() - started)
        answers.append(decided)
    if kept:
        detail = "camera not mapped to a lane of this device: kept for staff to assign, nothing decided"
        return api.create_response(request, {"decisions": answers, "kept": kept, "detail": detail}, status=202)
    return api.create_response(request, {"decisions": answers}, status=200)


async def _clock_measured(device_id: str, device_time) -> None:
    """A push's capture time against the server's clock: the device's clock offset, shown to staff."""
    offset = clock.offset_s(device_time=device_time, now=timezone.now())
    if clock.worth_recording(device_id, offset):
        with contextlib.suppress(DatabaseError):  # only a measurement: the read is decided (or `retry`) all the same
            await run_db(clock.device_clock_record, device_id=device_id, offset_s=offset)


def _platerecognizer(request) -> list[vendors.VendorRead]:
    if request.content_type == "multipart/form-data":
        if "json" not in request.POST:
            raise ProtocolError("bad_message", "the multipart webhook needs a 'json' field")
        return vendors.platerecognizer_reads(request.POST["json"])
    return vendors.platerecognizer_reads(request.body)


def _hikvision(request) -> list[vendors.VendorRead]:
    if request.content_type == "multipart/form-data":
        part = request.FILES.get("anpr.xml")
        if part is not None:
            return vendors.hikvision_reads(part.read())
        if "anpr.xml" in request.POST:
            return vendors.hikvision_reads(request.POST["anpr.xml"].encode())
        raise ProtocolError("bad_message", "the multipart alert needs an 'anpr.xml' part")
    return vendors.hikvision_reads(request.body)


@api.post("/platerecognizer", auth=None)
async def platerecognizer(request):
    """Plate Recognizer Stream webhook; `data.camera_id` maps to a lane in Device.settings["cameras"]."""
    return await _decide_vendor_reads(request, _platerecognizer, "cameras")


@api.post("/hikvision", auth=None)
async def hikvision(request):
    """Hikvision ISAPI EventNotificationAlert; `channelID` maps to a lane in Device.settings["channels"] or
    ["cameras"]."""
    return await _decide_vendor_reads(request, _hikvision, "channels")
