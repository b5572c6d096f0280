"""The operations API, under /api/ops/v1/: the flight-status feed (docs/flight-status.md)."""

import json

from ninja import NinjaAPI
from ninja.security import HttpBearer

from apps.bookings import flights
from apps.core.concurrency import run_sync
from apps.ground import feed

api = NinjaAPI(urls_namespace="ops-api", title="Parkgate operations API", version="1", docs_url=None)

MAX_UPDATES = 500  # per request: a feed sends what changed, a poller its day


class FeedBearer(HttpBearer):
    is_async = True

    async def authenticate(self, request, token: str):
        return await run_sync(feed.feed_token_authenticate, token=token.strip())


def _report(updates: list) -> list[dict]:
    return flights.flight_statuses_report(updates=updates)


@api.post("/flight-status", auth=FeedBearer(), response={202: dict, 400: dict, 422: dict})
async def flight_status(request):
    """One update or a list of them. 202 with one result per update; 422 when none could be used."""
    try:
        body = json.loads(request.body or b"null")
    except ValueError:
        return 400, {"error": "invalid_json", "detail": "the body is not JSON"}
    updates = body if isinstance(body, list) else [body]
    if not updates or len(updates) > MAX_UPDATES:
        return 400, {"error": "invalid_body", "detail": f"send one update or a list of 1 to {MAX_UPDATES}"}
    results = await run_sync(_report, updates)
    if all(r["result"] == "refused" for r in results):
        return 422, {"error": "refused", "detail": "; ".join(r["reason"] for r in results), "results": results}
    return 202, {"results": results}
