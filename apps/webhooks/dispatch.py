"""Delivering the outbox: fan events out to endpoints, then send each endpoint's deliveries.

- `fan_out` turns waiting events into one delivery per subscribed active endpoint, oldest first, then starts senders
  for the endpoints that got work. One runs at a time (a transaction-level advisory lock; others wait their turn),
  so deliveries are numbered in event order, which is the order a booking's deliveries are sent in.
- A sender (`drain`, one job per endpoint) claims a batch of the endpoint's due deliveries in one statement (FOR
  UPDATE SKIP LOCKED, each leased), POSTs them concurrently with one httpx AsyncClient, records the batch in one
  transaction, and goes on for a few seconds, then hands over to a fresh job. A claim counts the endpoint's
  deliveries in flight under the endpoint's row lock: at most WEBHOOKS_ENDPOINT_CONCURRENCY per endpoint, so a slow
  endpoint holds one of the workers' job slots, and a claim never waits on an HTTP call.
- Order per booking: a delivery is claimed only when no earlier one of its booking to that endpoint is undelivered.
- A sender whose whole batch failed stops there: a failing endpoint is tried again when its retries come due, so
  its backlog never takes the workers' time from the endpoints that answer.
- At least once: a claim is a lease (timeout + margin); a sender that dies (kill -9) leaves a lease that runs out and
  the delivery is claimed again. Failures are retried with exponential backoff (WEBHOOKS_RETRY_BASE_S doubling) for
  WEBHOOKS_RETRY_FOR_S (24 h) from the first attempt; then the endpoint is disabled and its owner emailed.
"""

import asyncio
import functools
import json
import logging
import ssl
import time
from dataclasses import dataclass
from datetime import timedelta

import certifi
import httpx
from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.utils import timezone

from apps.core.jobs import enqueue, enqueue_many
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
            start_senders(touched)
        done += len(events)


def start_senders(endpoint_ids) -> None:
    """Enqueue a sender for each endpoint, together, after commit. One each is enough: it sends up to the
    endpoint's concurrency limit at once; a second finds the limit taken and returns."""
    enqueue_many("webhooks.drain", [{"endpoint_id": endpoint_id} for endpoint_id in sorted(endpoint_ids)])


# The due deliveries, oldest first, up to the endpoint's free slots (its deliveries in flight counted in this
# statement, after the caller took the endpoint's row lock), leased to this sender in the same statement. A delivery
# whose booking has an earlier undelivered one waits, so a batch never holds two of one booking. The plan must not
# grow with the backlog, even before the new rows have statistics: candidates in id order (an index) stop at the
# batch, and the earlier-of-its-booking check is a probe per candidate (under OR, never a join over the backlog).
_CLAIM = """
WITH picked AS (
  SELECT c.id FROM webhooks_delivery c
  WHERE c.endpoint_id = %(endpoint)s AND c.next_attempt_at <= %(now)s
    AND (c.status = 'pending' OR (c.status = 'sending' AND c.lease_until < %(now)s))
    AND (c.booking_id IS NULL OR NOT EXISTS (
      SELECT 1 FROM webhooks_delivery e
      WHERE e.endpoint_id = c.endpoint_id AND e.booking_id = c.booking_id AND e.id < c.id
        AND e.status IN ('pending', 'sending')))
  ORDER BY c.id
  LIMIT GREATEST(0, %(limit)s - (
    SELECT count(*) FROM webhooks_delivery f
    WHERE f.endpoint_id = %(endpoint)s AND f.status = 'sending' AND f.lease_until >= %(now)s))
  FOR UPDATE OF c SKIP LOCKED)
UPDATE webhooks_delivery d
SET status = 'sending', lease_until = %(lease_until)s, first_attempt_at = COALESCE(d.first_attempt_at, %(now)s)
FROM webhooks_event ev
WHERE d.id = ANY(ARRAY(SELECT id FROM picked)) AND ev.id = d.event_id
RETURNING d.id, d.event_id, d.booking_id, d.attempts, d.first_attempt_at, d.next_attempt_at,
  ev.type, ev.created_at, ev.data
"""


@dataclass
class Claimed:
    delivery: Delivery
    endpoint: Endpoint
    body: bytes


def claim(endpoint_id: int) -> list[Claimed]:
    """The endpoint's due deliveries, as many as it has free slots, leased to this sender (one short transaction:
    the endpoint's row lock, then one statement); empty when none is due or the endpoint is at its limit."""
    now = timezone.now()
    params = {
        "endpoint": endpoint_id,
        "now": now,
        "lease_until": now + timedelta(seconds=settings.WEBHOOKS_TIMEOUT_S + 10),
        "limit": settings.WEBHOOKS_ENDPOINT_CONCURRENCY,
    }
    with transaction.atomic():
        endpoint = Endpoint.objects.select_for_update().filter(pk=endpoint_id, active=True).first()
        if endpoint is None:
            return []
        with connection.cursor() as cursor:
            cursor.execute(_CLAIM, params)
            rows = sorted(cursor.fetchall(), key=lambda row: row[0])
    batch = []
    for pk, event_id, booking_id, attempts, first_attempt_at, next_attempt_at, event_type, created_at, data in rows:
        delivery = Delivery(
            pk=pk,
            endpoint_id=endpoint_id,
            event_id=event_id,
            booking_id=booking_id,
            status=Delivery.Status.SENDING,
            attempts=attempts,
            first_attempt_at=first_attempt_at,
            next_attempt_at=next_attempt_at,
        )
        payload = {
            "type": event_type,
            "timestamp": created_at.isoformat().replace("+00:00", "Z"),
            "data": json.loads(data) if isinstance(data, str) else data,
        }
        batch.append(Claimed(delivery, endpoint, json.dumps(payload, separators=(",", ":")).encode()))
    return batch


@functools.cache
def _tls() -> ssl.SSLContext:
    """The senders' TLS context, built once per process: loading the CA bundle is most of what a fresh client
    costs, and every sender job makes one."""
    return ssl.create_default_context(cafile=certifi.where())


def _client() -> httpx.AsyncClient:
    """A sender's client (its connections reused across its batches); redirects are not followed."""
    return httpx.AsyncClient(
        verify=_tls(),
        timeout=httpx.Timeout(settings.WEBHOOKS_TIMEOUT_S, connect=min(5.0, settings.WEBHOOKS_TIMEOUT_S)),
        limits=httpx.Limits(max_connections=settings.WEBHOOKS_ENDPOINT_CONCURRENCY),
        headers={"user-agent": "Parkgate-Webhooks/1"},
    )


async def _post(client: httpx.AsyncClient, claimed: Claimed, secrets_: list[str], refused: str) -> Attempt:
    endpoint, delivery = claimed.endpoint, claimed.delivery
    now = timezone.now()
    msg_id = f"msg_{delivery.event_id}"
    headers = signing.headers(secrets_, msg_id, int(now.timestamp()), claimed.body)
    headers["content-type"] = "application/json"
    attempt = Attempt(delivery=delivery, endpoint=endpoint, at=now, error=refused)
    started = time.perf_counter()
    if not refused:
        try:
            response = await client.post(endpoint.url, content=claimed.body, headers=headers)
            attempt.status_code = response.status_code
            attempt.response_excerpt = response.text[:EXCERPT]
        except httpx.TimeoutException:
            attempt.error = f"timed out after {settings.WEBHOOKS_TIMEOUT_S:g} s"
        except httpx.HTTPError as exc:
            attempt.error = f"{type(exc).__name__}: {exc}"[:200]
    attempt.latency_ms = round((time.perf_counter() - started) * 1000)
    return attempt


def send(batch: list[Claimed], client: httpx.AsyncClient, loop: asyncio.AbstractEventLoop) -> list[Attempt]:
    """POST a batch (one endpoint's) concurrently on the sender's own loop; one attempt per delivery, in order."""
    endpoint, now = batch[0].endpoint, timezone.now()
    secrets_ = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_until and endpoint.previous_secret_until > now:
        secrets_.append(endpoint.previous_secret)
    try:
        addresses.check_url(endpoint.url)  # resolves the name: once per batch, before the loop runs
        refused = ""
    except addresses.AddressRefused as exc:
        refused = str(exc)[:200]

    async def post_all() -> list[Attempt]:
        return await asyncio.gather(*(_post(client, c, secrets_, refused) for c in batch))

    return loop.run_until_complete(post_all())


def backoff_s(attempts: int) -> float:
    return settings.WEBHOOKS_RETRY_BASE_S * 2 ** min(attempts - 1, 20)


# The batch's outcomes in one statement (bulk_update's CASE per field costs more to build than to run).
_RECORD = """
UPDATE webhooks_delivery d
SET status = v.status, attempts = v.attempts, lease_until = NULL, delivered_at = v.delivered_at,
    next_attempt_at = v.next_attempt_at
FROM unnest(%s::bigint[], %s::varchar[], %s::int[], %s::timestamptz[], %s::timestamptz[])
  AS v(id, status, attempts, delivered_at, next_attempt_at)
WHERE d.id = v.id
"""


def _record_row(d: Delivery) -> tuple:
    return d.pk, str(d.status), d.attempts, d.delivered_at, d.next_attempt_at


def _delivered(attempt: Attempt) -> bool:
    return attempt.status_code is not None and 200 <= attempt.status_code < 300


def record(batch: list[Claimed], attempts: list[Attempt]) -> None:
    """The attempts' outcomes, in one transaction: each delivery delivered, or retried later; or, past the retry
    period, the endpoint disabled."""
    now, endpoint_id = timezone.now(), batch[0].endpoint.pk
    retry_in, give_up = set(), None
    for claimed, attempt in zip(batch, attempts, strict=True):
        delivery = claimed.delivery
        delivery.attempts += 1
        delivery.lease_until = None
        if _delivered(attempt):
            delivery.status, delivery.delivered_at = Delivery.Status.DELIVERED, now
            continue
        delivery.status = Delivery.Status.PENDING
        wait = backoff_s(delivery.attempts)
        delivery.next_attempt_at = now + timedelta(seconds=wait)
        if delivery.next_attempt_at - delivery.first_attempt_at > timedelta(seconds=settings.WEBHOOKS_RETRY_FOR_S):
            give_up = give_up or delivery.first_attempt_at
        else:
            retry_in.add(wait)
    with transaction.atomic():
        Attempt.objects.bulk_create(attempts)
        with connection.cursor() as cursor:
            cursor.execute(
                _RECORD, [list(column) for column in zip(*(_record_row(c.delivery) for c in batch), strict=True)]
            )
        if give_up is not None:  # fails what is still undelivered, this batch's retries included
            _disable(endpoint_id, reason=f"failing since {give_up:%Y-%m-%d %H:%M} UTC")
        else:
            for wait in sorted(retry_in):  # a sender when each comes due (the batch's attempts may differ)
                enqueue("webhooks.drain", endpoint_id=endpoint_id, defer_s=wait)


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
    """Send the endpoint's due deliveries, a batch at a time, for up to DRAIN_BUDGET_S; returns how many. The
    batch's POSTs run concurrently on an event loop of this job's own (the job is a thread; the database calls run
    between batches, never while the loop runs)."""
    started, sent = time.monotonic(), 0
    loop = asyncio.new_event_loop()
    client = _client()
    try:
        while time.monotonic() - started < DRAIN_BUDGET_S:
            batch = claim(endpoint_id)
            if not batch:
                return sent
            attempts = send(batch, client, loop)
            record(batch, attempts)
            sent += len(batch)
            if not any(map(_delivered, attempts)):
                return sent  # failing: nothing more until its retries come due (record enqueued their senders)
        start_senders([endpoint_id])  # more may be due: a fresh job, behind the others waiting
        return sent
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()


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
    start_senders(set(due))
