"""The agents' REST API, /api/v1/ (docs/operations.md 5; the OpenAPI document at /api/v1/openapi.json is the contract).

An edge: it authenticates the token, rate-limits it, parses times in the car park's zone, calls one booking service
or selector in one call on an API worker thread (token checked there too) and answers. Every error is JSON
`{"error": CODE, "detail": ...}`; bad input never makes a 500.
"""

import base64
import hashlib
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db.models import Exists, OuterRef
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Header, NinjaAPI, Query, Router, Status
from ninja.errors import AuthenticationError, HttpError, ValidationError

from apps.agents.services import TokenOwner
from apps.bookings import idempotency, sale, selectors, services, validation
from apps.bookings.api_access import (
    AgentToken,
    ApiError,
    _as_agent,
)
from apps.bookings.errors import NotContracted
from apps.bookings.localtime import LocalTimeError, parse_instant
from apps.bookings.models import Booking
from apps.bookings.schemas import (
    DATETIME_DOC,
    ERRORS,
    AvailabilityOut,
    BookingAmended,
    BookingIn,
    BookingOut,
    BookingPage,
    BookingPatch,
    CarParkOut,
    Flights,
)
from apps.carparks.models import CarPark
from apps.core.actor import acting

DESCRIPTION = """Bookings for agents. Authenticate with `Authorization: Bearer <token>` (from `manage.py
create_api_token`). Times in responses are UTC (`Z`); times in requests carry an offset or `Z`, and without one
are read as the car park's local time (422 `nonexistent_local_time` / `ambiguous_local_time` across a clock change).
A stay is priced and holds a space per calendar day at the car park: every local date from arrival to departure
counts (leaving at exactly midnight starts no new day); times lie between 2000-01-01 and about three years ahead.
Errors are `{"error": CODE, "detail": ...}`; one about a field has `detail: [{"loc": [..., FIELD], "msg": ...}]`.
A commission or price beyond your terms (rate plus tolerance; distance from the tariff) is a 422 naming it.
Products: `GET /availability` lists each product you sell at the car park with its fares' prices and the spaces
left for you (your share); its top-level fields are your default product and fare's. `POST /bookings` takes
`product`, `fare` and `extras` (all optional: your defaults); an unknown one is a 422 `invalid` naming the field
with the `allowed` values; a product without space for you on a day is a 409 `no_capacity` naming it.
Amending dates, car park or product charges the fare's amend fee: the answer's `amendment` shows it.
`POST /bookings` honours an `Idempotency-Key` header for 24 h (the same body gets the first answer again).
Requests are rate limited per token (429 with `Retry-After`)."""

api = NinjaAPI(
    title="Parkgate agents' API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="agents-api",
    docs_url="/docs",
    auth=AgentToken(),
)


ERROR_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "not_allowed"}


def _error_response(request: HttpRequest, status: int, error: str, detail: Any, headers=None) -> HttpResponse:
    response = api.create_response(request, {"error": error, "detail": detail}, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


@api.exception_handler(ApiError)
def _api_error(request, exc: ApiError):
    return _error_response(request, exc.status, exc.error, exc.detail, exc.headers)


@api.exception_handler(ValidationError)
def _validation_error(request, exc: ValidationError):
    detail = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))} for e in exc.errors]
    return _error_response(request, 422, "invalid", detail)


@api.exception_handler(AuthenticationError)
def _unauthorised(request, exc):
    response = _error_response(request, 401, "unauthorized", "a valid 'Authorization: Bearer <token>' is required")
    response["WWW-Authenticate"] = 'Bearer realm="parkgate"'
    return response


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    return _error_response(request, exc.status_code, ERROR_CODES.get(exc.status_code, "error"), str(exc))


@api.exception_handler(RequestDataTooBig)
def _too_large(request, exc):
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return _error_response(request, 413, "too_large", f"the request body is over {limit} bytes")


@api.exception_handler(Http404)
def _not_found(request, exc):
    return _error_response(request, 404, "not_found", str(exc) or "not found")


def _domain_error(exc: Exception, where: tuple[str, ...] = ("body", "body")) -> ApiError:
    """A booking service's refusal as the API answers it; one about a field names it with the `loc` a schema error
    on that field has (`["body", "body", field]` for a request body, `["query", field]`)."""
    if isinstance(exc, NotContracted):
        return ApiError(403, exc.code, str(exc))
    if isinstance(exc, services.NoCapacity):
        return ApiError(409, exc.code, str(exc))
    if isinstance(exc, services.DuplicateAgentRef | services.BookingClosed):
        return ApiError(409, exc.code, str(exc))
    if isinstance(exc, LocalTimeError):
        return ApiError(422, exc.code, str(exc))
    if getattr(exc, "field", None):
        allowed = {"allowed": exc.allowed} if getattr(exc, "allowed", None) is not None else {}
        return ApiError(422, exc.code, [{"loc": [*where, exc.field], "msg": str(exc), **allowed}])
    return ApiError(422, getattr(exc, "code", "invalid"), str(exc))


DOMAIN_ERRORS = (
    services.BookingInvalid,
    services.NoCapacity,
    services.DuplicateAgentRef,
    services.BookingClosed,
    LocalTimeError,
)


# --- the work, in a worker thread ----------------------------------------------------------------------------


def _contracted_carpark(owner: TokenOwner, code: str) -> CarPark:
    contract = CarPark.agents.through.objects.filter(carpark_id=OuterRef("pk"), agent_id=owner.agent_id)
    found = CarPark.objects.filter(code=code.strip().upper()).annotate(contracted=Exists(contract))
    carpark = found.first() if "\x00" not in code else None
    if carpark is None:
        raise ApiError(422, "unknown_carpark", f"no car park {code!r}")
    if not carpark.contracted:
        raise ApiError(403, "not_contracted", f"you are not contracted for {carpark.code}")
    return carpark


def _instant(value: str, carpark: CarPark, name: str) -> datetime:
    try:
        return parse_instant(value, carpark.tz)
    except LocalTimeError as exc:
        raise ApiError(422, exc.code, f"{name}: {exc}") from None


def _own_booking(owner: TokenOwner, ref: str) -> Booking:
    booking = selectors.agent_booking(agent_id=owner.agent_id, ref=ref) if "\x00" not in ref else None
    if booking is None:
        raise ApiError(404, "not_found", f"you have no booking {ref!r}")
    return booking


def _out(booking: Booking) -> dict:
    return selectors.booking_as_dict(booking)


def _availability(owner: TokenOwner, carpark_code: str, arrival: str, departure: str) -> dict:
    carpark = _contracted_carpark(owner, carpark_code)
    start, end = _instant(arrival, carpark, "arrival"), _instant(departure, carpark, "departure")
    try:
        validation.stay_times_check(arrival=start, departure=end)
    except services.BookingInvalid as exc:
        raise _domain_error(exc, ("query",)) from None
    return sale.availability_data(carpark=carpark, arrival=start, departure=end, at=timezone.now(), agent=owner.agent)


def _create(owner: TokenOwner, body: BookingIn) -> tuple[int, dict]:
    carpark = _contracted_carpark(owner, body.carpark)
    flights = body.flights or Flights()
    try:
        booking = services.booking_create(
            carpark=carpark,
            arrival=_instant(body.arrival, carpark, "arrival"),
            departure=_instant(body.departure, carpark, "departure"),
            customer_name=body.customer.name,
            customer_email=body.customer.email,
            customer_phone=body.customer.phone,
            vehicles=[v.dict() for v in body.vehicles],
            source=Booking.Source.API,
            price=body.price,
            commission=body.commission,
            agent=owner.agent,
            agent_ref=body.agent_ref,
            flight_outbound=flights.outbound,
            flight_return=flights.return_,
            product=body.product,
            fare=body.fare,
            extras=[e.dict() for e in body.extras or []],
        )
    except DOMAIN_ERRORS as exc:
        raise _domain_error(exc) from None
    return 201, _out(booking)


def _create_idempotent(owner: TokenOwner, body: BookingIn, key: str | None, fingerprint: str) -> tuple[int, dict]:
    """Create, or replay the first answer to the same Idempotency-Key (422 when it came with another body)."""

    def attempt() -> tuple[int, dict]:
        try:
            return _create(owner, body)
        except ApiError as exc:
            return exc.status, {"error": exc.error, "detail": exc.detail}

    if not key:
        return attempt()
    try:
        return idempotency.idempotent_response(
            agent_id=owner.agent_id, key=key, fingerprint=fingerprint, respond=attempt
        )
    except idempotency.IdempotencyKeyReused as exc:
        raise ApiError(422, "idempotency_key_reused", str(exc)) from None


def _amend(owner: TokenOwner, ref: str, body: BookingPatch) -> dict:
    booking = _own_booking(owner, ref)
    changes: dict[str, Any] = {}
    carpark = booking.carpark
    if body.carpark is not None:
        carpark = changes["carpark"] = _contracted_carpark(owner, body.carpark)
    if body.arrival is not None:
        changes["arrival"] = _instant(body.arrival, carpark, "arrival")
    if body.departure is not None:
        changes["departure"] = _instant(body.departure, carpark, "departure")
    if body.customer is not None:
        for field in ("name", "email", "phone"):
            if getattr(body.customer, field) is not None:
                changes[f"customer_{field}"] = getattr(body.customer, field)
    if body.vehicles is not None:
        changes["vehicles"] = [v.dict() for v in body.vehicles]
    if body.flights is not None:
        if body.flights.outbound is not None:
            changes["flight_outbound"] = body.flights.outbound
        if body.flights.return_ is not None:
            changes["flight_return"] = body.flights.return_
    if body.price is not None:
        changes["price"] = body.price
    if body.commission is not None:
        changes["commission"] = body.commission
    for field in ("product", "fare"):
        if getattr(body, field) is not None:
            changes[field] = getattr(body, field)
    if body.extras is not None:
        changes["extras"] = [e.dict() for e in body.extras]
    try:
        with acting("agent", owner.agent.code):
            amended = services.booking_amend(booking=booking, **changes)
    except DOMAIN_ERRORS as exc:
        raise _domain_error(exc) from None
    return {
        **_out(selectors.agent_booking(agent_id=owner.agent_id, ref=amended.reference)),
        "amendment": amended.amendment.as_dict(),
    }


def _get(owner: TokenOwner, ref: str) -> dict:
    return selectors.booking_as_dict(_own_booking(owner, ref))


def _cancel(owner: TokenOwner, ref: str) -> dict:
    booking = _own_booking(owner, ref)
    try:
        with acting("agent", owner.agent.code):
            booking = services.booking_cancel(booking=booking)
    except DOMAIN_ERRORS as exc:
        raise _domain_error(exc) from None
    return _out(booking)


def _encode_cursor(booking: Booking) -> str:
    raw = f"{booking.updated_at.isoformat()}|{booking.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, pk = raw.split("|")
        parsed = datetime.fromisoformat(at)
        if parsed.tzinfo is None:
            raise ValueError
        return parsed, int(pk)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(422, "invalid_cursor", "cursor is not one this API gave") from None


def _list(owner: TokenOwner, updated_since: str | None, cursor: str | None, limit: int) -> tuple[list[dict], str]:
    since = None
    if updated_since is not None:
        try:
            since = datetime.fromisoformat(updated_since.strip())
        except ValueError:
            raise ApiError(422, "invalid_datetime", f"{updated_since!r} is not an ISO 8601 date and time") from None
        if since.tzinfo is None:
            raise ApiError(422, "invalid_datetime", "updated_since needs an offset or Z")
    after = _decode_cursor(cursor) if cursor else None
    rows, more = selectors.agent_bookings_page(agent_id=owner.agent_id, updated_since=since, after=after, limit=limit)
    return [selectors.booking_as_dict(b) for b in rows], (_encode_cursor(rows[-1]) if more else "")


def _carparks(owner: TokenOwner) -> list[dict]:
    return list(
        CarPark.objects.filter(agents__id=owner.agent_id)
        .order_by("code")
        .values("code", "name", "timezone", "currency")
    )


# --- routes --------------------------------------------------------------------------------------------------


@api.get("/availability", response={200: AvailabilityOut, **ERRORS}, summary="Price and spaces left for a stay")
async def availability(
    request,
    carpark: str = Query(..., max_length=8),
    arrival: str = Query(..., max_length=64, description=DATETIME_DOC),
    departure: str = Query(..., max_length=64, description=DATETIME_DOC),
):
    return await _as_agent(request, _availability, carpark, arrival, departure)


@api.post("/bookings", response={201: BookingOut, **ERRORS}, by_alias=True, summary="Make a booking")
async def create_booking(
    request,
    body: BookingIn,
    idempotency_key: str | None = Header(None, alias="Idempotency-Key", max_length=255),
):
    fingerprint = hashlib.sha256(b"POST /bookings\n" + request.body).hexdigest()
    status, payload = await _as_agent(request, _create_idempotent, body, idempotency_key, fingerprint)
    return Status(status, payload)


@api.get("/bookings", response={200: BookingPage, **ERRORS}, by_alias=True, summary="Your bookings by updated_at")
async def list_bookings(
    request,
    updated_since: str | None = Query(None, max_length=64, description="ISO 8601 with offset; inclusive"),
    cursor: str | None = Query(None, max_length=200, description="From a previous page's `next`"),
    limit: int = Query(50, ge=1, le=200),
):
    items, next_cursor = await _as_agent(request, _list, updated_since, cursor, limit)
    next_url = None
    if next_cursor:
        query = request.GET.copy()
        query["cursor"] = next_cursor
        next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
    return {"items": items, "next": next_url}


@api.get("/bookings/{ref}", response={200: BookingOut, **ERRORS}, by_alias=True, summary="One of your bookings")
async def get_booking(request, ref: str):
    return await _as_agent(request, _get, ref)


@api.patch("/bookings/{ref}", response={200: BookingAmended, **ERRORS}, by_alias=True, summary="Amend a booking")
async def amend_booking(request, ref: str, body: BookingPatch):
    return await _as_agent(request, _amend, ref, body)


@api.post("/bookings/{ref}/cancel", response={200: BookingOut, **ERRORS}, by_alias=True, summary="Cancel a booking")
async def cancel_booking(request, ref: str):
    return await _as_agent(request, _cancel, ref)


@api.get("/carparks", response={200: list[CarParkOut], **ERRORS}, summary="The car parks you are contracted for")
async def carparks(request):
    return await _as_agent(request, _carparks)


# The catch-all is a router of its own that project/urls.py mounts last, after routers other apps add to this API
# (apps.webhooks'): a route registered here would answer their paths first.
fallback = Router()


@fallback.api_operation(["GET", "POST", "PUT", "PATCH", "DELETE"], "/{path:rest}", auth=None, include_in_schema=False)
async def unknown(request, rest: str):
    """Any other path under /api/v1/: the same JSON error shape as everything else, not an HTML page."""
    raise ApiError(404, "not_found", f"no such endpoint: {request.path}")
