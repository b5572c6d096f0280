"""Staff logins (issue #28, 4): wrong passwords lock the account and the client address (django-axes), the lock is
audited, a supervisor unlocks it, and successful logins never count. A real `serve` behind a trusted proxy: the
client address is the forwarded one (TRUSTED_PROXIES)."""

import re

import httpx
import pytest
from django.contrib.auth import get_user_model

from apps.core.models import AuditLog
from apps.staff.services import staff_member_set
from tests.security.conftest import PROXY, address

pytestmark = pytest.mark.django_db(transaction=True)

GOOD = "correct-horse-battery"
LIMIT = 5  # AXES_FAILURE_LIMIT: the failure that reaches it is already answered with the lock-out (429)
LOCKED = [200] * (LIMIT - 1) + [429]


class Browser:
    """A browser at one client address, behind the trusted proxy."""

    def __init__(self, server, client_address: str | None = None):
        self.address = client_address or address()
        self.client = httpx.Client(
            base_url=server.http,
            transport=httpx.HTTPTransport(local_address=PROXY),
            headers={"X-Forwarded-For": self.address},
            timeout=30,
        )

    def login(self, username: str, password: str, path: str = "/accounts/login/") -> int:
        self.client.get(path)
        data = {"username": username, "password": password, "csrfmiddlewaretoken": self.client.cookies["csrftoken"]}
        return self.client.post(path, data=data).status_code

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.client.close()


def test_wrong_passwords_lock_the_account_whichever_address_tries_next(proxied, demo_world):
    staff_member_set(username="alice", password=GOOD, carpark_codes=["LHR-T5"], role="operator")
    with Browser(proxied) as attacker:
        assert [attacker.login("alice", f"guess-{i}") for i in range(LIMIT)] == LOCKED
        assert attacker.login("alice", GOOD) == 429  # the right password no longer logs in
    with Browser(proxied) as elsewhere:
        assert elsewhere.login("alice", GOOD) == 429  # the account is locked, not only that address
    locked = AuditLog.objects.filter(action="staff.login_locked_out").order_by("at").first()
    assert locked.data["username"] == "alice" and locked.data["ip_address"] == attacker.address


def test_the_admin_login_is_throttled_too(proxied, demo_world):
    get_user_model().objects.create_superuser("root-admin", "root@example.com", GOOD)
    with Browser(proxied) as attacker:
        assert [attacker.login("root-admin", "nope", "/admin/login/") for _ in range(LIMIT)] == LOCKED
        assert attacker.login("root-admin", GOOD, "/admin/login/") == 429


def test_one_address_trying_many_accounts_is_locked_out(proxied, demo_world):
    staff_member_set(username="carol", password=GOOD, carpark_codes=["LHR-T5"], role="operator")
    with Browser(proxied) as attacker:
        assert [attacker.login(f"user{i}", "nope") for i in range(LIMIT)] == LOCKED
        assert attacker.login("carol", GOOD) == 429
    with Browser(proxied) as carol:  # another customer behind the same proxy is not locked out
        assert carol.login("carol", GOOD) == 302


def test_successful_logins_never_count(proxied, demo_world):
    with Browser(proxied) as browser:
        assert [browser.login("demo", "demo") for _ in range(3 * LIMIT)] == [302] * (3 * LIMIT)
        for _ in range(3):  # a typo now and then, then the right password: never locked
            assert [browser.login("demo", "typo") for _ in range(LIMIT - 1)] == [200] * (LIMIT - 1)
            assert browser.login("demo", "demo") == 302


def test_a_supervisor_unlocks_an_account_and_an_address(proxied, demo_world):
    staff_member_set(username="dave", password=GOOD, carpark_codes=["LHR-T5"], role="operator")
    with Browser(proxied) as attacker:
        for i in range(LIMIT):
            attacker.login(f"someone{i}", "nope")
        for _ in range(LIMIT):
            attacker.login("dave", "nope")
        assert attacker.login("dave", GOOD) == 429

    with Browser(proxied) as operator:  # an operator may not unlock
        assert operator.login("dave", GOOD) == 429
    staff_member_set(username="erin", password=GOOD, carpark_codes=["LHR-T5"], role="operator")
    with Browser(proxied) as operator:
        assert operator.login("erin", GOOD) == 302
        assert operator.client.get("/dashboard/lockouts").status_code == 403

    with Browser(proxied) as supervisor:
        assert supervisor.login("demo", "demo") == 302
        page = supervisor.client.get("/dashboard/lockouts")
        assert page.status_code == 200 and "dave" in page.text and attacker.address in page.text
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        for field, value in (("username", "dave"), ("ip_address", attacker.address)):
            response = supervisor.client.post("/dashboard/lockouts", data={field: value, "csrfmiddlewaretoken": token})
            assert response.status_code == 302
        assert "dave" not in supervisor.client.get("/dashboard/lockouts").text

    with Browser(proxied, attacker.address) as dave:  # the address and the account are both free again
        assert dave.login("dave", GOOD) == 302
    unlocks = AuditLog.objects.filter(action="staff.login_unlocked").order_by("at")
    assert [(u.actor.username, u.data) for u in unlocks] == [
        ("demo", {"username": "dave"}),
        ("demo", {"ip_address": attacker.address}),
    ]
