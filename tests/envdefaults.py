"""Loaded by pytest before Django's settings (`-p tests.envdefaults`): environment defaults for the test run.

DATABASE_URL / REDIS_URL are left alone: scripts/test sets them to the local PostgreSQL and Redis, and in CI a
missing service makes the tests fail, never skip (see conftest.py).
"""

import os
import tempfile
from urllib.parse import urlsplit

# scripts/test runs the suite on several workers (pytest-xdist): each worker has its own test database (pytest-django
# names it), and here its own Redis database (the tests flush it; the jobs' queue and the channel layer live in it)
# and its own metrics directory (the controller's, inherited, would mix the two workers' samples).
_worker = os.environ.get("PYTEST_XDIST_WORKER")  # "gw0", "gw1", ...
if _worker:
    if os.environ.get("REDIS_URL"):
        _url = urlsplit(os.environ["REDIS_URL"])
        _stride = 16 // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "2"))  # Redis has databases 0-15
        _db = (int(_url.path.strip("/") or 0) + _stride * int(_worker.removeprefix("gw"))) % 16
        os.environ["REDIS_URL"] = _url._replace(path=f"/{_db}").geturl()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix=f"parkgate-metrics-{_worker}-")

os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("PARKGATE_HTTPS", "0")
# Staff sign in with a password alone unless a test turns the second factor on (tests/security/test_two_factor.py).
os.environ.setdefault("STAFF_TWO_FACTOR", "0")
os.environ.setdefault("ALLOWED_HOSTS", "localhost,127.0.0.1,testserver,.parkgate.test")
# The run's own directory for prometheus-client's multi-process files (its servers inherit it): no samples of an
# earlier run are added to this one's.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="parkgate-metrics-"))
# Outbound webhooks: the tests' receivers listen on loopback; short timeouts and retries keep the tests quick.
os.environ.setdefault("WEBHOOKS_ALLOW_PRIVATE", "1")
os.environ.setdefault("WEBHOOKS_TIMEOUT_S", "1")
os.environ.setdefault("WEBHOOKS_RETRY_BASE_S", "0.2")
os.environ.setdefault("WEBHOOKS_RETRY_FOR_S", "4")
