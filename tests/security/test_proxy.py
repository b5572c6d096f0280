"""Client addresses behind a proxy (TRUSTED_PROXIES): rate limits key on the real client, never on a header an
untrusted peer sent. One real `serve` trusts 127.0.0.2/32 only: a client bound to 127.0.0.2 is the proxy, one bound
to 127.0.0.1 is a customer connecting directly (and forging X-Forwarded-For)."""

import secrets

import httpx
import pytest

from tests.security.conftest import DIRECT, PROXY
from tests.security.conftest import address as _address

pytestmark = pytest.mark.django_db(transaction=True)


def _reference() -> str:
    return "PG-" + secrets.token_hex(3).upper()


class Browser:
    """A customer's browser on the demo brand's manage form, through `source` with X-Forwarded-For `forwarded`."""

    def __init__(self, server, source: str):
        self.client = httpx.Client(
            base_url=server.http, transport=httpx.HTTPTransport(local_address=source), timeout=30
        )
        self.client.get("/manage/").raise_for_status()  # the CSRF cookie

    def lookup(self, forwarded: str | None, reference: str | None = None) -> int:
        headers = {"X-CSRFToken": self.client.cookies["csrftoken"]}
        if forwarded:
            headers["X-Forwarded-For"] = forwarded
        data = {"reference": reference or _reference(), "email": "nobody@example.com"}
        return self.client.post("/manage/", data=data, headers=headers).status_code

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.client.close()


def test_behind_a_trusted_proxy_each_customer_has_a_bucket_of_their_own(proxied, demo_world):
    first, second = _address(), _address()
    with Browser(proxied, PROXY) as browser:
        assert [browser.lookup(f"{first}") for _ in range(11)] == [404] * 10 + [429]
        assert browser.lookup(f"{second}") == 404  # another customer behind the same proxy
        # the proxy appends the peer it saw: only the rightmost untrusted address counts, not what the client wrote
        assert browser.lookup(f"{second}, {first}") == 429


def test_from_an_untrusted_peer_the_header_is_ignored(proxied, demo_world):
    with Browser(proxied, DIRECT) as browser:
        statuses = [browser.lookup(_address()) for _ in range(11)]  # a new forged address each time
    assert statuses[-1] == 429  # one bucket: the peer's


def test_one_reference_is_limited_whoever_asks(proxied, demo_world):
    """Guessing a booking's email from many addresses: the manage lookup keys on the reference too."""
    reference = _reference()
    with Browser(proxied, PROXY) as browser:
        statuses = [browser.lookup(_address(), reference) for _ in range(11)]
        assert statuses == [404] * 10 + [429]
        assert browser.lookup(_address()) == 404  # other references are still looked up


def test_enrolment_limits_each_forwarded_client(proxied):
    first, second = _address(), _address()
    with httpx.Client(transport=httpx.HTTPTransport(local_address=PROXY), timeout=30) as client:

        def enrol(address):
            return client.post(
                f"{proxied.http}/api/device/v1/enrol", json={"code": "nope"}, headers={"X-Forwarded-For": address}
            )

        answers = [enrol(first).status_code for _ in range(61)]
        assert answers == [400] * 60 + [429]
        assert enrol(second).status_code == 400
