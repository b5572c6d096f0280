"""Who may act for an agent (#28 item 3): `set_agent_smtp_password` makes SMTP AUTH the agent's restriction, and
failed AUTH attempts are throttled per login and per client address across `serve` processes. From outside, with
smtplib against two real `serve` processes sharing one PostgreSQL and one Redis."""

import io
import smtplib
import ssl
import subprocess
import sys
from email.utils import make_msgid

import pytest
from django.contrib.auth.hashers import check_password
from django.core.management import call_command

from apps.agents.models import Agent, AgentMailbox
from apps.carparks.models import CarPark
from apps.mail.models import InboundEmail
from tests.mail.messages import labels_text, message
from tests.mail.support import self_signed_cert
from tests.support import ROOT, start_server, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

SKYPARK = "skypark@bookings.parkgate.test"
PER_LOGIN, PER_CLIENT, WINDOW_S = 3, 6, 12
PASSWORD = "long-enough-secret"


@pytest.fixture(scope="module")
def auth_servers(server_env, tmp_path_factory):
    """Two `serve` processes with STARTTLS (AUTH is only offered after it) and small throttling limits."""
    cert, key = self_signed_cert(tmp_path_factory.mktemp("tls"))
    env = server_env | {
        "SMTP_TLS_CERT": str(cert),
        "SMTP_TLS_KEY": str(key),
        "SMTP_AUTH_FAILURES_PER_LOGIN": str(PER_LOGIN),
        "SMTP_AUTH_FAILURES_PER_CLIENT": str(PER_CLIENT),
        "SMTP_AUTH_THROTTLE_WINDOW_S": str(WINDOW_S),
    }
    servers = [start_server(env, name=f"mail-auth-{n}", worker=False) for n in (1, 2)]
    yield servers
    for server in servers:
        server.stop()


def tls_client(port: int, source: str = "127.0.0.1") -> smtplib.SMTP:
    smtp = smtplib.SMTP("127.0.0.1", port, timeout=30, source_address=(source, 0))
    smtp.ehlo()
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # self-signed, for the test
    smtp.starttls(context=context)
    smtp.ehlo()
    return smtp


def auth(smtp: smtplib.SMTP, user: str, password: str) -> int:
    """One AUTH PLAIN attempt (smtplib's login() would try LOGIN too after a failure); the reply code."""
    smtp.user, smtp.password = user, password
    try:
        return smtp.auth("PLAIN", smtp.auth_plain)[0]
    except smtplib.SMTPAuthenticationError as exc:
        return exc.smtp_code


def auth_once(port: int, user: str, password: str, source: str) -> int:
    smtp = tls_client(port, source)
    try:
        return auth(smtp, user, password)
    finally:
        smtp.close()


def raw_labels(ref: str) -> bytes:
    msg = message(labels_text(ref=ref), message_id=make_msgid(domain="agent.example"))
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def agent_with_password(code: str, password: str, monkeypatch) -> str:
    agent = Agent.objects.create(code=code, name=code, email_format="labels")
    agent.carparks.set(CarPark.objects.all())
    monkeypatch.setenv("PARKGATE_PASSWORD", password)
    call_command("set_agent_smtp_password", "--agent", code)
    return AgentMailbox.objects.create(agent=agent, address=f"{code}@bookings.parkgate.test").address


def set_password(env: dict, *args: str, password: str = PASSWORD) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "manage.py"), "set_agent_smtp_password", *args]
    return subprocess.run(command, env=env | {"PARKGATE_PASSWORD": password}, cwd=ROOT, capture_output=True, text=True)


def test_set_agent_smtp_password_then_only_an_authenticated_client_sends_for_the_agent(
    auth_servers, server_env, demo_world
):
    done = set_password(server_env, "--agent", "skypark")
    assert done.returncode == 0, done.stderr
    agent = Agent.objects.get(code="skypark")
    assert agent.smtp_username == "skypark" and check_password(PASSWORD, agent.smtp_password_hash)
    assert PASSWORD not in agent.smtp_password_hash + done.stdout + done.stderr

    port = auth_servers[0].smtp_port
    with tls_client(port) as smtp:  # a Cancelled from anyone no longer reaches the agent's bookings
        smtp.mail("anyone@example.com")
        code, text = smtp.rcpt(SKYPARK)
        assert code == 550 and text.startswith(b"5.7.1")
    with tls_client(port) as smtp:
        assert auth(smtp, "skypark", PASSWORD) == 235
        assert smtp.sendmail("res@skypark.example", [SKYPARK], raw_labels("AUTH-1")) == {}
    assert InboundEmail.objects.filter(agent=agent).count() == 1


def test_set_agent_smtp_password_unknown_agent_exits_1_bad_command_line_2_short_password_refused(
    server_env, demo_world
):
    unknown = set_password(server_env, "--agent", "nope")
    assert unknown.returncode == 1 and "nope" in unknown.stderr
    assert set_password(server_env).returncode == 2
    short = set_password(server_env, "--agent", "skypark", password="short")
    assert short.returncode == 1 and "short" in short.stderr.lower()
    assert Agent.objects.get(code="skypark").smtp_password_hash == ""


def test_failures_for_one_login_throttle_it_on_every_process_until_the_window_passes(
    auth_servers, demo_world, monkeypatch
):
    box = agent_with_password("lockme", "right-password-1", monkeypatch)
    agent_with_password("otherok", "right-password-2", monkeypatch)
    first, second = (server.smtp_port for server in auth_servers)
    with tls_client(first, "127.0.0.2") as smtp:
        assert [auth(smtp, "lockme", f"guess-{n}") for n in range(PER_LOGIN)] == [535] * PER_LOGIN
    # Another process, another client address, the right password: still a temporary failure.
    assert auth_once(second, "lockme", "right-password-1", "127.0.0.3") == 454
    assert auth_once(first, "lockme", "right-password-1", "127.0.0.2") == 454
    assert auth_once(second, "otherok", "right-password-2", "127.0.0.3") == 235  # only that login is throttled

    wait_for(
        lambda: auth_once(second, "lockme", "right-password-1", "127.0.0.3") == 235,
        timeout=WINDOW_S + 30,
        interval=1,
        message="AUTH accepted once the window has passed",
    )
    with tls_client(second, "127.0.0.3") as smtp:
        assert auth(smtp, "lockme", "right-password-1") == 235
        assert smtp.sendmail("a@agent.example", [box], raw_labels("AUTH-2")) == {}


def test_failures_from_one_client_address_throttle_every_login_from_it(auth_servers, demo_world, monkeypatch):
    agent_with_password("clientok", "right-password-3", monkeypatch)
    first, second = (server.smtp_port for server in auth_servers)
    with tls_client(first, "127.0.0.4") as smtp:  # a guesser trying many logins, each only once
        assert [auth(smtp, f"ghost{n}", "guess") for n in range(PER_CLIENT)] == [535] * PER_CLIENT
    assert auth_once(second, "clientok", "right-password-3", "127.0.0.4") == 454
    assert auth_once(second, "clientok", "right-password-3", "127.0.0.5") == 235


def test_check_deploy_warns_for_every_active_agent_anyone_may_send_mail_for(demo_world, monkeypatch):
    def warned() -> set[str]:
        out = io.StringIO()
        call_command("check", "--deploy", "--fail-level", "CRITICAL", stdout=out, stderr=out)
        return {line.split("'")[1] for line in out.getvalue().splitlines() if "(parkgate.mail.W001)" in line}

    assert warned() == {"skypark", "holidayx", "legacy80"}
    Agent.objects.filter(code="skypark").update(allowed_networks="192.0.2.0/24")
    Agent.objects.filter(code="holidayx").update(allowed_senders="@holidayx.example")
    monkeypatch.setenv("PARKGATE_PASSWORD", PASSWORD)
    call_command("set_agent_smtp_password", "--agent", "legacy80")
    assert warned() == set()
    Agent.objects.filter(code="skypark").update(allowed_networks="", active=False)  # inactive: receives no mail
    assert warned() == set()


def test_a_login_shared_by_two_agents_acts_only_for_the_agent_whose_password_it_gave(
    auth_servers, demo_world, monkeypatch
):
    boxes = {}
    for code in ("sharea", "shareb"):
        agent = Agent.objects.create(code=code, name=code, email_format="labels", smtp_username="shared")
        boxes[code] = AgentMailbox.objects.create(agent=agent, address=f"{code}@bookings.parkgate.test").address
        monkeypatch.setenv("PARKGATE_PASSWORD", f"password-of-{code}")
        call_command("set_agent_smtp_password", "--agent", code)
    with tls_client(auth_servers[0].smtp_port, "127.0.0.6") as smtp:
        assert auth(smtp, "shared", "password-of-shareb") == 235
        smtp.mail("a@agent.example")
        code, text = smtp.rcpt(boxes["sharea"])
        assert code == 550 and text.startswith(b"5.7.1")
        assert smtp.rcpt(boxes["shareb"])[0] == 250
