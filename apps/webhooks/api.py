"""Agents manage their webhook endpoints through the agents' API (/api/v1/webhooks; project/urls.py mounts this
router on it, so the same token, rate limit, error shape and OpenAPI document apply). An edge: each route calls one
service or selector on an API worker thread (apps.bookings.api_access)."""

from django.db import transaction
from ninja import Field, Router, Schema, Status

from apps.agents.services import TokenOwner
from apps.bookings.api_access import ApiError, _as_agent
from apps.bookings.schemas import ERRORS
from apps.webhooks import selectors, services
from apps.webhooks.models import EVENT_TYPES, Delivery, Endpoint

router = Router(tags=["webhooks"])


class EndpointIn(Schema):
    url: str = Field(max_length=500, description="http(s) URL of your receiver (public addresses only)")
    events: list[str] = Field(min_length=1, max_length=len(EVENT_TYPES), description=", ".join(EVENT_TYPES))


class EndpointSecret(Schema):
    id: int
    url: str
    events: list[str]
    secret: str = Field(description="whsec_ + base64: verify the webhook-signature header with it. Shown only now")


class EndpointOut(Schema):
    id: int
    url: str
    events: list[str]
    active: bool
    disabled_reason: str
    created_at: str


class DeliveryOut(Schema):
    id: int
    webhook_id: str
    type: str
    status: str
    attempts: int
    created_at: str
    delivered_at: str | None
    next_attempt_at: str | None
    last_status_code: int | None
    last_latency_ms: int | None
    last_response: str
    last_error: str


class Queued(Schema):
    delivery: int


def _own(owner: TokenOwner, endpoint_id: int) -> Endpoint:
    endpoint = Endpoint.objects.filter(pk=endpoint_id, agent_id=owner.agent_id).first()
    if endpoint is None:
        raise ApiError(404, "not_found", f"you have no webhook endpoint {endpoint_id}")
    return endpoint


def _secret(endpoint: Endpoint) -> dict:
    return {"id": endpoint.pk, "url": endpoint.url, "events": endpoint.events, "secret": endpoint.secret}


def _create(owner: TokenOwner, body: EndpointIn) -> dict:
    try:
        endpoint = services.endpoint_create(url=body.url, events=body.events, agent_id=owner.agent_id)
    except services.EndpointInvalid as exc:
        raise ApiError(422, "invalid", [{"loc": ["body", "body", exc.field], "msg": str(exc)}]) from None
    return _secret(endpoint)


def _delete(owner: TokenOwner, endpoint_id: int) -> None:
    services.endpoint_delete(endpoint=_own(owner, endpoint_id))


def _rotate(owner: TokenOwner, endpoint_id: int) -> dict:
    return _secret(services.endpoint_rotate_secret(endpoint_id=_own(owner, endpoint_id).pk))


def _enable(owner: TokenOwner, endpoint_id: int) -> dict:
    services.endpoint_enable(endpoint_id=_own(owner, endpoint_id).pk)
    return selectors.endpoint_as_dict(_own(owner, endpoint_id))


def _test(owner: TokenOwner, endpoint_id: int) -> dict:
    return {"delivery": services.endpoint_send_test(endpoint=_own(owner, endpoint_id)).pk}


def _replay(owner: TokenOwner, endpoint_id: int, delivery_id: int) -> dict:
    endpoint = _own(owner, endpoint_id)
    if not Delivery.objects.filter(pk=delivery_id, endpoint=endpoint).exists():
        raise ApiError(404, "not_found", f"endpoint {endpoint_id} has no delivery {delivery_id}")
    with transaction.atomic():
        return {"delivery": services.delivery_replay(delivery_id=delivery_id).pk}


@router.post("", response={201: EndpointSecret, **ERRORS}, summary="Subscribe an endpoint to events")
async def create_endpoint(request, body: EndpointIn):
    return Status(201, await _as_agent(request, _create, body))


@router.get("", response={200: list[EndpointOut], **ERRORS}, summary="Your webhook endpoints")
async def list_endpoints(request):
    return await _as_agent(request, lambda owner: selectors.agent_endpoints(agent_id=owner.agent_id))


@router.delete("/{endpoint_id}", response={204: None, **ERRORS}, summary="Delete an endpoint")
async def delete_endpoint(request, endpoint_id: int):
    await _as_agent(request, _delete, endpoint_id)
    return Status(204, None)


@router.post("/{endpoint_id}/rotate", response={200: EndpointSecret, **ERRORS}, summary="A new signing secret")
async def rotate_secret(request, endpoint_id: int):
    """The new secret is shown once; the old one also signs deliveries (a second signature) for a day."""
    return await _as_agent(request, _rotate, endpoint_id)


@router.post("/{endpoint_id}/enable", response={200: EndpointOut, **ERRORS}, summary="Enable a disabled endpoint")
async def enable_endpoint(request, endpoint_id: int):
    return await _as_agent(request, _enable, endpoint_id)


@router.post("/{endpoint_id}/test", response={202: Queued, **ERRORS}, summary="Send a webhook.test event")
async def send_test(request, endpoint_id: int):
    return Status(202, await _as_agent(request, _test, endpoint_id))


@router.get("/{endpoint_id}/deliveries", response={200: list[DeliveryOut], **ERRORS}, summary="Delivery log")
async def deliveries(request, endpoint_id: int):
    """The endpoint's latest 100 deliveries, newest first, each with its last attempt."""
    return await _as_agent(
        request, lambda owner: selectors.endpoint_deliveries(endpoint_id=_own(owner, endpoint_id).pk)
    )


@router.post(
    "/{endpoint_id}/deliveries/{delivery_id}/replay", response={202: Queued, **ERRORS}, summary="Send one again"
)
async def replay(request, endpoint_id: int, delivery_id: int):
    return Status(202, await _as_agent(request, _replay, endpoint_id, delivery_id))
