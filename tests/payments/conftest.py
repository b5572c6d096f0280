"""localstripe (a stateful Stripe stand-in: API, Stripe.js, signed webhooks) for the payment tests, started once per
session like the other servers; and settings pointing the stripe provider at it."""

import contextlib
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import stripe

from tests.support import ARTIFACTS, free_port

WEBHOOK_SECRET = "whsec_tests_only"
SECRET_KEY = "sk_test_parkgate"
PUBLISHABLE_KEY = "pk_test_parkgate"


class LocalStripe:
    def __init__(self, port: int, proc: subprocess.Popen):
        self.port, self.proc = port, proc

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def js_url(self) -> str:
        return f"{self.url}/js.stripe.com/v3/"

    def client(self) -> stripe.StripeClient:
        return stripe.StripeClient(SECRET_KEY, base_addresses={"api": self.url})

    def card_token(self, number: str = "4242424242424242") -> str:
        """What Stripe.js's createToken does in the browser (with the publishable key)."""
        answer = httpx.post(
            f"{self.url}/v1/tokens",
            data={"key": PUBLISHABLE_KEY, "card[number]": number, "card[exp_month]": "12", "card[exp_year]": "2034",
                  "card[cvc]": "123"},
        )  # fmt: skip
        answer.raise_for_status()
        return answer.json()["id"]

    def authenticate(self, client_secret: str, success: bool = True) -> None:
        """What Stripe.js's confirmCardPayment does for a 3-D Secure card (localstripe's stand-in step)."""
        intent = client_secret.split("_secret_")[0]
        answer = httpx.post(
            f"{self.url}/v1/payment_intents/{intent}/_authenticate?success={'true' if success else 'false'}",
            json={"key": PUBLISHABLE_KEY, "client_secret": client_secret},
        )
        answer.raise_for_status()

    def send_webhooks_to(self, url: str) -> None:
        httpx.post(
            f"{self.url}/_config/webhooks/parkgate", data={"url": url, "secret": WEBHOOK_SECRET}
        ).raise_for_status()


@pytest.fixture(scope="session")
def localstripe() -> LocalStripe:
    """`localstripe` on a free port; the run FAILS (never skips) if it cannot start."""
    port = free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / "localstripe.log", "ab")  # noqa: SIM115  (closed below)
    exe = Path(sys.executable).with_name("localstripe")
    proc = subprocess.Popen([str(exe), "--port", str(port), "--from-scratch"], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/js.stripe.com/v3/", timeout=1).status_code == 200:
                break
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"localstripe did not start: {(ARTIFACTS / 'localstripe.log').read_text()[-2000:]}")
        time.sleep(0.1)
    yield LocalStripe(port, proc)
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


@pytest.fixture
def stripe_settings(settings, localstripe):
    """This process's stripe provider on localstripe; jobs run in this thread right after their commit."""
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_PUBLISHABLE_KEY = PUBLISHABLE_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = localstripe.url
    settings.STRIPE_JS_URL = localstripe.js_url
    settings.PARKGATE_JOBS_BACKEND = "inprocess"
    return settings


def stripe_env(localstripe: LocalStripe) -> dict[str, str]:
    return {
        "STRIPE_SECRET_KEY": SECRET_KEY,
        "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": localstripe.url,
        "STRIPE_JS_URL": localstripe.js_url,
    }
