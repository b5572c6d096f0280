"""Delivering the outbox: fan events out to endpoints, then send each endpoint's deliveries.

- `fan_out` turns waiting events into one delivery per subscribed active endpoint, oldest first, then starts senders
  for the endpoints that got work. One runs at a time (a transaction-level advisory lock; others wait their turn),
  so deliveries are numbered in event order, which is the order a booking's deliveries are sent in.
- A sender (`drain`, one job per endpoint slot) claims the endpoint's next due delivery and POSTs it, again and
  again for a few seconds, then hands over to a fresh job. A claim counts the endpoint's deliveries in flight
  under the endpoint's row lock: at most WEBHOOKS_ENDPOINT_CONCURRENCY per endpoint, so a slow endpoint holds only
  that many of the workers' job slots, and a claim never waits on an HTTP call.
- Order per booking: a delivery is claimed only when no earlier one of its booking to that endpoint is undelivered.
- At least once: a claim is a lease (timeout + margin); a sender that dies (kill -9) leaves a lease that runs out and
  the delivery is claimed again. Failures are retried with exponential backoff (WEBHOOKS_RETRY_BASE_S doubling) for
  WEBHOOKS_RETRY_FOR_S (24 h) from the first attempt; then the endpoint is disabled and its owner emailed.
"""

import json
import logging
import time
from dataclasses import dataclass
from datetime import timedelta

import httpx
from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.utils import timezone

from apps.core.jobs import enqueue
from apps.webhooks import addresses, signing
from apps.webhooks.models import Attempt, Delivery, Endpoint, Event
from apps.webhooks.services import booking_data

log = logging.getLogger(__name__)

FAN_OUT_BATCH = 500
FAN_OUT_LOCK = 0x5EB400C5  # pg_advisory_xact_lock key: one fan-out at a time
DRAIN_BUDGET_S = 5.0  # a sender hands over to a fresh job after this long, so one endpoint never holds a slot long
EXCERPT = 500


def fan_out() -> int:
    """Deliveries for every waiting event, oldest first; returns how many events were fanned out."""
    done = 0
    while True:
        touched: set[int] = set()
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FAN_OUT_LOCK])
            events = list(Event.objects.filter(fanned_out=False).order_by("id")[:FAN_OUT_BATCH])
            if not events:
                return done
            endpoints = list(Endpoint.objects.filter(active=True))
            deliveries = []
            for event in events:
                if event.data is None and event.booking_id is not None:
                    event.data = booking_data(event.booking_id)  # a trigger's event: the booking as it is now
                for endpoint in endpoints:
                    if event.type in endpoint.events and endpoint.agent_id in (None, event.agent_id):
                        deliveries.append(Delivery(endpoint=endpoint, event=event, booking_id=event.booking_id))
                        touched.add(endpoint.pk)
                event.fanned_out = True
            Delivery.objects.bulk_create(deliveries)
            Event.objects.bulk_update(events, ["data", "fanned_out"])
            for endpoint_id in touched:
                start_senders(endpoint_id)
        done += len(events)


def start_senders(endpoint_id: int, slots: int | None = None) -> None:
    """Enqueue senders for an endpoint (after commit): as many as it may have in flight."""
    for _ in range(slots or settings.WEBHOOKS_ENDPOINT_CONCURRENCY):
        enqueue("webhooks.drain", endpoint_id=endpoint_id)


_CLAIM = """
SELECT d.id FROM webhooks_delivery d
WHERE d.endpoint_id = %(endpoint)s AND d.next_attempt_at <= %(now)s
  AND (d.status = 'pending' OR (d.status = 'sending' AND d.lease_until < %(now)s))
  AND NOT EXISTS (
    SELECT 1 FROM webhooks_delivery e
    WHERE e.endpoint_id = d.endpoint_id AND e.booking_id = d.booking_id AND e.id < d.id
      AND e.status IN ('pending', 'sending'))
ORDER BY d.id LIMIT 1 FOR UPDATE SKIP LOCKED
"""


@dataclass
class Claimed:
    delivery: Delivery
    endpoint: Endpoint
    body: bytes


def claim(endpoint_id: int) -> Claimed | None:
    """The endpoint's next due delivery, leased to this sender; None when none is due or the endpoint is at its
    concurrency limit."""
    now = timezone.now()
    with transaction.atomic():
        endpoint = Endpoint.objects.select_for_update().filter(pk=endpoint_id, active=True).first()
        if endpoint is None:
            return None
        in_flight = Delivery.objects.filter(endpoint_id=endpoint_id, status="sending", lease_until__gte=now).count()
        if in_flight >= settings.WEBHOOKS_ENDPOINT_CONCURRENCY:
            return None
        with connection.cursor() as cursor:
            cursor.execute(_CLAIM, {"endpoint": endpoint_id, "now": now})
            row = cursor.fetchone()
        if row is None:
            return None
        delivery = Delivery.objects.select_related("event").get(pk=row[0])
        delivery.status = Delivery.Status.SENDING
        delivery.lease_until = now + timedelta(seconds=settings.WEBHOOKS_TIMEOUT_S + 10)
        delivery.first_attempt_at = delivery.first_attempt_at or now
        delivery.save(update_fields=["status", "lease_until", "first_attempt_at"])
    event = delivery.event
    payload = {"type": event.type, "timestamp": event.created_at.isoformat().replace("+00:00", "Z"), "data": event.data}
    return Claimed(delivery, endpoint, json.dumps(payload, separators=(",", ":")).encode())


_client: httpx.Client | None = None


def _http() -> httpx.Client:
    """One client per process (its connection pool reused across deliveries); redirects are not followed."""
    global _client
    if _client is None:
        _client = httpx.Client(
            timeout=httpx.Timeout(settings.WEBHOOKS_TIMEOUT_S, connect=min(5.0, settings.WEBHOOKS_TIMEOUT_S)),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            headers={"user-agent": "Parkgate-Webhooks/1"},
        )
    return _client


def send(claimed: Claimed) -> Attempt:
    endpoint, delivery = claimed.endpoint, claimed.delivery
    now = timezone.now()
    secrets_ = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_until and endpoint.previous_secret_until > now:
        secrets_.append(endpoint.previous_secret)
    msg_id = f"msg_{delivery.event_id}"
    headers = signing.headers(secrets_, msg_id, int(now.timestamp()), claimed.body)
    headers["content-type"] = "application/json"
    attempt = Attempt(delivery=delivery, endpoint=endpoint, at=now)
    started = time.perf_counter()
    try:
        addresses.check_url(endpoint.url)
        response = _http().post(endpoint.url, content=claimed.body, headers=headers)
        attempt.status_code = response.status_code
        attempt.response_excerpt = response.text[:EXCERPT]
    except addresses.AddressRefused as exc:
        attempt.error = str(exc)[:200]
    except httpx.TimeoutException:
        attempt.error = f"timed out after {settings.WEBHOOKS_TIMEOUT_S:g} s"
    except httpx.HTTPError as exc:
        attempt.error = f"{type(exc).__name__}: {exc}"[:200]
    attempt.latency_ms = round((time.perf_counter() - started) * 1000)
    return attempt


def backoff_s(attempts: int) -> float:
    return settings.WEBHOOKS_RETRY_BASE_S * 2 ** min(attempts - 1, 20)


def record(claimed: Claimed, attempt: Attempt) -> None:
    """The attempt's outcome: delivered; or retried later; or, past the retry period, the endpoint disabled."""
    delivery, now = claimed.delivery, timezone.now()
    ok = attempt.status_code is not None and 200 <= attempt.status_code < 300
    with transaction.atomic():
        attempt.save()
        delivery.attempts += 1
        delivery.lease_until = None
        if ok:
            delivery.status, delivery.delivered_at = Delivery.Status.DELIVERED, now
        else:
            delivery.status = Delivery.Status.PENDING
            wait = backoff_s(delivery.attempts)
            delivery.next_attempt_at = now + timedelta(seconds=wait)
            if delivery.next_attempt_at - delivery.first_attempt_at > timedelta(seconds=settings.WEBHOOKS_RETRY_FOR_S):
                _disable(claimed.endpoint.pk, reason=f"failing since {delivery.first_attempt_at:%Y-%m-%d %H:%M} UTC")
                delivery.status = Delivery.Status.FAILED
            else:
                enqueue("webhooks.drain", endpoint_id=claimed.endpoint.pk, defer_s=wait)
        delivery.save(update_fields=["status", "attempts", "lease_until", "delivered_at", "next_attempt_at"])


def _disable(endpoint_id: int, *, reason: str) -> None:
    endpoint = Endpoint.objects.select_for_update(of=("self",)).select_related("agent").get(pk=endpoint_id)
    if not endpoint.active:
        return
    endpoint.active, endpoint.disabled_at, endpoint.disabled_reason = False, timezone.now(), reason[:200]
    endpoint.save(update_fields=["active", "disabled_at", "disabled_reason"])
    Delivery.objects.filter(endpoint_id=endpoint_id, status__in=["pending", "sending"]).update(status="failed")
    to = endpoint.notify_email or (endpoint.agent.error_report_address if endpoint.agent else "")
    recipients = [to] if to else [address for _, address in settings.ADMINS]
    if recipients:
        subject, body = f"Parkgate: webhook endpoint {endpoint.url} disabled", _disabled_text(endpoint)
        transaction.on_commit(
            lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=True)
        )
    log.warning("webhook endpoint %s disabled: %s", endpoint_id, reason)


def _disabled_text(endpoint: Endpoint) -> str:
    return (
        f"Parkgate could not deliver webhooks to {endpoint.url} ({endpoint.disabled_reason}) and has retried for "
        f"{settings.WEBHOOKS_RETRY_FOR_S // 3600} hours, so the endpoint is now disabled and no more events are sent "
        "to it. Fix the receiver, enable the endpoint again and replay the deliveries you need (API: "
        f"/api/v1/webhooks/{endpoint.pk}/deliveries); meanwhile GET /api/v1/bookings?updated_since=... lists what "
        "changed.\n"
    )


def drain(endpoint_id: int) -> int:
    """Send the endpoint's due deliveries one after another for up to DRAIN_BUDGET_S; returns how many."""
    started, sent = time.monotonic(), 0
    while time.monotonic() - started < DRAIN_BUDGET_S:
        claimed = claim(endpoint_id)
        if claimed is None:
            return sent
        record(claimed, send(claimed))
        sent += 1
    start_senders(endpoint_id, slots=1)  # more may be due: a fresh job, behind the others waiting
    return sent


def sweep() -> None:
    """The safety net (periodic): events whose wake-up was lost, and endpoints with due deliveries (a retry whose
    job was lost, a lease run out when its sender died)."""
    fan_out()
    now = timezone.now()
    due = (
        Delivery.objects.filter(status__in=["pending", "sending"], next_attempt_at__lte=now, endpoint__active=True)
        .values_list("endpoint_id", flat=True)
        .distinct()
    )
    with transaction.atomic():
        for endpoint_id in due:
            start_senders(endpoint_id)
