"""Process health for load balancers and orchestrators, and the Prometheus scrape."""

import hmac
import logging

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import Http404, HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST

from apps.core import jobs, metrics

log = logging.getLogger(__name__)


async def healthz(request):
    return JsonResponse({"status": "ok"})


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        return False
    finally:
        connection.close()


async def _redis_ok() -> bool:
    from redis.asyncio import Redis

    client = Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(await client.ping())
    except Exception:
        return False
    finally:
        await client.aclose()


async def readyz(request):
    checks = {"database": await sync_to_async(_database_ok, thread_sensitive=False)()}
    if settings.REDIS_URL:
        checks["redis"] = await _redis_ok()
    else:
        checks["channel_layer"] = get_channel_layer() is not None
    ok = all(checks.values())
    return JsonResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503)


async def metrics_view(request):
    """Prometheus scrape: every process's instruments on this host. Bearer METRICS_TOKEN; 404 while it is unset."""
    token = settings.METRICS_TOKEN
    if not token or request.method != "GET":
        raise Http404
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        response = HttpResponse("unauthorised\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = "Bearer"
        return response
    try:
        depth = await jobs.queue_depth()
    except Exception:  # a scrape still answers while Redis is away; the depth is left out then
        log.warning("metrics: the job queue's depth could not be read", exc_info=True)
        depth = None
    return HttpResponse(metrics.render(queue_depth=depth), content_type=CONTENT_TYPE_LATEST)
