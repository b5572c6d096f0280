import ipaddress
import secrets

import pytest

from tests.support import start_server

PROXY, DIRECT = "127.0.0.2", "127.0.0.1"  # a client bound to PROXY is the trusted load balancer


@pytest.fixture(scope="session")
def proxied(server_env):
    """A real `serve` behind a (trusted) proxy at 127.0.0.2; 127.0.0.1 is an untrusted peer."""
    server = start_server(server_env | {"TRUSTED_PROXIES": f"{PROXY}/32, 10.0.0.0/8"}, name="serve-proxied")
    yield server
    server.stop()


def address() -> str:
    """A fresh documentation address per call (rate-limit buckets live for minutes in the shared Redis), written as
    PostgreSQL gives it back (`::68`, not `::0068`)."""
    return str(ipaddress.ip_address(f"2001:db8::{secrets.token_hex(2)}:{secrets.token_hex(2)}"))
