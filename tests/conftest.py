"""Test fixtures. The suite runs against real PostgreSQL and Redis (scripts/test sets DATABASE_URL and REDIS_URL):
if either is missing or down, the run fails at once; nothing is skipped."""

import os
import time

import pytest
import redis
from asgiref.sync import SyncToAsync
from django.conf import settings
from django.core.management.base import CommandError
from django.db import OperationalError, connection, connections
from django.db.backends.postgresql.operations import DatabaseOperations
from django.test import TransactionTestCase

from tests.support import Server, database_url_for, start_server


def pytest_sessionstart(session):
    problems = []
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")) and not os.environ.get(
        "EMBEDDED_POSTGRES_DIR"
    ):
        problems.append("DATABASE_URL must point at PostgreSQL (or EMBEDDED_POSTGRES_DIR name the embedded cluster's)")
    if not os.environ.get("REDIS_URL"):
        problems.append("REDIS_URL must point at Redis")
    else:
        try:
            redis.Redis.from_url(os.environ["REDIS_URL"], socket_connect_timeout=2).flushdb()
        except redis.RedisError as exc:
            problems.append(f"Redis is not reachable: {exc}")
    if problems:
        pytest.exit("Parkgate's tests need real services (run scripts/test): " + "; ".join(problems), returncode=1)


# The modules that take minutes run first: with a module to a worker (scripts/test: xdist's --dist loadfile, which
# hands modules out in collection order), one of them started last keeps one worker busy alone at the end.
SLOW_FIRST = ("tests/deploy/", "tests/e2e/", "tests/mail/test_reliability.py", "tests/dashboard/test_browser.py")


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: not item.nodeid.startswith(SLOW_FIRST))  # stable: the order within is kept


METRICS_TOKEN = "tests-metrics-token"
VAT_NUMBER = "GB 123 4567 89"  # the seller's VAT number on the invoices of the served tests


def _flush_retrying_deadlocks(original):
    """After a transactional test, pytest-django TRUNCATEs every table. A live `serve` may still be committing the
    test's last effects (a lane controller's disconnect, say); PostgreSQL then picks the TRUNCATE as a deadlock
    victim, and the unflushed rows break the next test. The other transaction is short: try the flush again."""

    def teardown(self):
        for attempt in range(5):
            try:
                return original(self)
            except CommandError as exc:
                if attempt == 4 or not isinstance(exc.__cause__, OperationalError):
                    raise
                time.sleep(0.2 * (attempt + 1))

    return teardown


TransactionTestCase._fixture_teardown = _flush_retrying_deadlocks(TransactionTestCase._fixture_teardown)


def _truncating_only_tables_with_rows(original):
    """The flush after a transactional test TRUNCATEs every table, and PostgreSQL makes new files for each
    (table, indexes) and syncs them: most of a test's teardown, for tables the test never touched. One query finds
    the tables holding a row; those are truncated, with CASCADE for any empty table that references them."""

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        if tables and not reset_sequences:
            probes = " UNION ALL ".join(
                f"(SELECT {i} FROM {self.quote_name(table)} LIMIT 1)"  # noqa: S608 (Django's own table names, quoted)
                for i, table in enumerate(tables)
            )
            with self.connection.cursor() as cursor:
                cursor.execute(probes)
                tables = [tables[i] for (i,) in cursor.fetchall()]
            allow_cascade = True
        return original(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)

    return sql_flush


DatabaseOperations.sql_flush = _truncating_only_tables_with_rows(DatabaseOperations.sql_flush)


@pytest.fixture(scope="session", autouse=True)
def _commits_not_waiting_for_the_disk(django_db_setup, django_db_blocker):
    """The test database need not survive a crash of PostgreSQL: its commits (every test's writes and flush, the
    served processes' too, which connect later) return without waiting for the WAL to reach the disk."""
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        name = connection.ops.quote_name(connection.settings_dict["NAME"])
        cursor.execute(f"ALTER DATABASE {name} SET synchronous_commit = off")
        cursor.execute("SET synchronous_commit = off")


@pytest.fixture(scope="session", autouse=True)
def _close_the_sync_threads_connection(django_db_setup):
    """Async tests run their sync_to_async calls (thread-sensitive, no outer async_to_sync) on asgiref's one shared
    executor thread, whose Django connection nothing closes: it stays checked out of the pool, and dropping the test
    database at the end then fails ("being accessed by other users"). Closed there, before the database goes."""
    yield
    SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=10)


WEBHOOK_BASIC_AUTH = "postmark:tests-webhook-secret"


@pytest.fixture(scope="session")
def server_env(django_db_setup) -> dict[str, str]:
    """Environment for Parkgate processes started by tests: the test database, the test Redis, plain HTTP."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_SETTINGS"))}
    env.update(
        DATABASE_URL=database_url_for(settings.DATABASES["default"]),
        REDIS_URL=os.environ["REDIS_URL"],
        SECRET_KEY="tests-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        DEBUG="0",
        PARKGATE_HTTPS="0",
        ALLOWED_HOSTS="localhost,127.0.0.1,.parkgate.test",
        DB_POOL_MIN="1",
        DB_POOL_MAX="8",
        LOG_LEVEL="INFO",
        METRICS_TOKEN=METRICS_TOKEN,
        VAT_NUMBER=VAT_NUMBER,
        # the mail provider's tracking webhook (bounces: tests/customers/test_bounces.py); mail itself stays console
        EMAIL_TRACKING_PROVIDER="postmark",
        ANYMAIL_WEBHOOK_SECRET=WEBHOOK_BASIC_AUTH,
    )
    return env


@pytest.fixture(scope="session")
def parkgate(server_env) -> Server:
    """A real `serve` + `worker` on PostgreSQL and Redis, shared by the end-to-end tests of the session."""
    server = start_server(server_env, name="serve")
    yield server
    server.stop()


@pytest.fixture
def demo_world(transactional_db):
    """The docs/operations.md demo world, committed, so that processes outside the test see it."""
    from project.demo import seed_demo

    seed_demo()
