"""Webhook reads: endpoints and their delivery log as the API shows them."""

from django.db.models import OuterRef, Subquery

from apps.bookings.localtime import utc_iso
from apps.webhooks.models import Attempt, Delivery, Endpoint


def endpoint_as_dict(endpoint: Endpoint) -> dict:
    return {
        "id": endpoint.pk,
        "url": endpoint.url,
        "events": endpoint.events,
        "active": endpoint.active,
        "disabled_reason": endpoint.disabled_reason,
        "created_at": utc_iso(endpoint.created_at),
    }


def agent_endpoints(*, agent_id: int) -> list[dict]:
    return [endpoint_as_dict(e) for e in Endpoint.objects.filter(agent_id=agent_id).order_by("id")]


def endpoint_deliveries(*, endpoint_id: int, limit: int = 100) -> list[dict]:
    last = Attempt.objects.filter(delivery=OuterRef("pk")).order_by("-id")
    rows = (
        Delivery.objects.filter(endpoint_id=endpoint_id)
        .select_related("event")
        .annotate(
            code=Subquery(last.values("status_code")[:1]),
            latency=Subquery(last.values("latency_ms")[:1]),
            excerpt=Subquery(last.values("response_excerpt")[:1]),
            error=Subquery(last.values("error")[:1]),
        )
        .order_by("-id")[:limit]
    )
    return [
        {
            "id": d.pk,
            "webhook_id": f"msg_{d.event_id}",
            "type": d.event.type,
            "status": d.status,
            "attempts": d.attempts,
            "created_at": utc_iso(d.created_at),
            "delivered_at": utc_iso(d.delivered_at) if d.delivered_at else None,
            "next_attempt_at": utc_iso(d.next_attempt_at) if d.status == "pending" else None,
            "last_status_code": d.code,
            "last_latency_ms": d.latency,
            "last_response": d.excerpt or "",
            "last_error": d.error or "",
        }
        for d in rows
    ]
