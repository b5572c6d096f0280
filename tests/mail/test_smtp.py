"""The SMTP server's behaviour, from outside the process with smtplib against real `serve` processes
(the shared `parkgate` one, and private ones for TLS, limits and a database that goes away)."""

import re
import smtplib
import ssl
import time
from email.utils import make_msgid

import pytest
from django.contrib.auth.hashers import make_password

from apps.agents.models import Agent, AgentMailbox
from apps.bookings.models import Booking
from apps.carparks.models import CarPark
from apps.mail.models import InboundEmail
from tests.mail.messages import labels_text, message
from tests.mail.support import TcpProxy, self_signed_cert
from tests.support import start_server, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

SKYPARK = "skypark@bookings.parkgate.test"
MAX_BYTES = 200_000


def agent_with(code: str, **restrictions) -> str:
    """A committed agent with its own mailbox and the given restrictions; returns the mailbox address."""
    agent = Agent.objects.create(code=code, name=code, email_format="labels", **restrictions)
    agent.carparks.set(CarPark.objects.all())
    return AgentMailbox.objects.create(agent=agent, address=f"{code}@bookings.parkgate.test").address


def raw_labels(ref: str) -> bytes:
    msg = message(labels_text(ref=ref), message_id=make_msgid(domain="agent.example"))
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def rcpt_reply(port: int, to: str, *, sender: str = "a@agent.example") -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=15) as smtp:
        smtp.ehlo()
        smtp.mail(sender)
        return smtp.rcpt(to)


@pytest.fixture(scope="module")
def limits_server(server_env, tmp_path_factory):
    """A private `serve` with STARTTLS, a 200 kB size limit and at most 5 sessions."""
    cert, key = self_signed_cert(tmp_path_factory.mktemp("tls"))
    env = server_env | {
        "SMTP_TLS_CERT": str(cert),
        "SMTP_TLS_KEY": str(key),
        "SMTP_MAX_MESSAGE_BYTES": str(MAX_BYTES),
        "SMTP_MAX_SESSIONS": "5",
    }
    server = start_server(env, name="mail-limits", worker=False)
    yield server
    server.stop()


def tls_client(port: int) -> smtplib.SMTP:
    smtp = smtplib.SMTP("127.0.0.1", port, timeout=15)
    smtp.ehlo()
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # self-signed, for the test
    smtp.starttls(context=context)
    smtp.ehlo()
    return smtp


# --- recipients and senders ------------------------------------------------------------------------------------


def test_message_to_an_agent_mailbox_is_stored_and_becomes_a_booking(parkgate, demo_world):
    with smtplib.SMTP("127.0.0.1", parkgate.smtp_port, timeout=10) as smtp:
        code, features = smtp.ehlo()
        assert code == 250 and b"SIZE 10485760" in features and b"AUTH" not in features
        smtp.mail("res@skypark.example")
        smtp.rcpt(SKYPARK)
        code, reply = smtp.data(raw_labels("E2E-1"))
    assert code == 250 and reply.startswith(b"2.0.0 Stored as ")
    stored = InboundEmail.objects.get(pk=int(reply.split()[-1]))
    assert stored.rcpt_tos == [SKYPARK] and stored.mail_from == "res@skypark.example" and stored.peer == "127.0.0.1"
    wait_for(lambda: Booking.objects.filter(agent_ref="E2E-1").exists(), message="booking from the job")
    wait_for(lambda: InboundEmail.objects.get(pk=stored.pk).status == "processed", message="processed")


def test_unknown_or_inactive_mailbox_gets_550_5_1_1(parkgate, demo_world):
    assert rcpt_reply(parkgate.smtp_port, "nobody@bookings.parkgate.test")[0] == 550
    Agent.objects.filter(code="skypark").update(active=False)
    code, text = rcpt_reply(parkgate.smtp_port, SKYPARK)
    assert code == 550 and text.startswith(b"5.1.1")


def test_source_network_restriction(parkgate, demo_world):
    outside = agent_with("netlock", allowed_networks="10.0.0.0/8\n192.168.1.0/24")
    inside = agent_with("netok", allowed_networks="10.0.0.0/8\n127.0.0.0/8")
    code, text = rcpt_reply(parkgate.smtp_port, outside)
    assert code == 550 and text.startswith(b"5.7.1")
    assert rcpt_reply(parkgate.smtp_port, inside)[0] == 250


def test_envelope_sender_restriction_by_address_or_domain(parkgate, demo_world):
    box = agent_with("senderlock", allowed_senders="@trusted.example\nboss@other.example")
    assert rcpt_reply(parkgate.smtp_port, box, sender="any.one@trusted.example")[0] == 250
    assert rcpt_reply(parkgate.smtp_port, box, sender="boss@other.example")[0] == 250
    code, text = rcpt_reply(parkgate.smtp_port, box, sender="intern@other.example")
    assert code == 550 and text.startswith(b"5.7.1")
    assert rcpt_reply(parkgate.smtp_port, box, sender="x@evil.example")[0] == 550


def test_smtp_auth_is_offered_only_after_starttls_and_required_by_the_agent(limits_server, demo_world):
    box = agent_with("authlock", smtp_username="authlock", smtp_password_hash=make_password("s3cret-pass"))
    with smtplib.SMTP("127.0.0.1", limits_server.smtp_port, timeout=15) as plain:
        code, features = plain.ehlo()
        assert b"STARTTLS" in features and b"AUTH" not in features
        assert plain.docmd("AUTH", "PLAIN AGF1dGhsb2NrAHMzY3JldC1wYXNz")[0] == 538  # encryption required
        plain.mail("a@agent.example")
        code, text = plain.rcpt(box)
        assert code == 550 and text.startswith(b"5.7.1")
    smtp = tls_client(limits_server.smtp_port)
    assert "auth" in smtp.esmtp_features
    with pytest.raises(smtplib.SMTPAuthenticationError):
        smtp.login("authlock", "wrong")
    smtp.close()
    smtp = tls_client(limits_server.smtp_port)
    smtp.login("authlock", "s3cret-pass")
    assert smtp.sendmail("a@agent.example", [box], raw_labels("TLS-1")) == {}
    smtp.quit()
    assert InboundEmail.objects.filter(agent__code="authlock", status__in=["received", "processed"]).count() == 1


# --- size and sessions -----------------------------------------------------------------------------------------


def rss_peak_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_size_is_advertised_and_a_bigger_message_is_refused_552_without_being_held(limits_server, demo_world):
    with smtplib.SMTP("127.0.0.1", limits_server.smtp_port, timeout=30) as smtp:
        smtp.ehlo()
        assert smtp.esmtp_features["size"] == str(MAX_BYTES)
        code, text = smtp.mail("a@agent.example", options=[f"SIZE={MAX_BYTES + 1}"])
        assert code == 552 and text.startswith(b"5.3.4")
        smtp.rset()
        assert smtp.sendmail("a@agent.example", [SKYPARK], raw_labels("SMALL-1")) == {}  # warm up
        peak_before = rss_peak_kb(limits_server.serve.proc.pid)
        smtp.mail("a@agent.example")
        smtp.rcpt(SKYPARK)
        line = b"X" * 998 + b"\r\n"
        body = b"Subject: big\r\n\r\n" + line * (40 * 1024 * 1024 // len(line))  # 40 MiB
        code, text = smtp.data(body)
        assert code == 552 and text.startswith(b"5.3.4")
        growth_mb = (rss_peak_kb(limits_server.serve.proc.pid) - peak_before) / 1024
        assert growth_mb < 20, f"serve's peak memory grew by {growth_mb:.0f} MB for a 40 MB message"
    assert not InboundEmail.objects.filter(subject="big").exists()


def test_at_most_max_sessions_then_421(limits_server):
    held = [smtplib.SMTP("127.0.0.1", limits_server.smtp_port, timeout=10) for _ in range(5)]
    try:
        with pytest.raises(smtplib.SMTPConnectError) as refused:
            smtplib.SMTP("127.0.0.1", limits_server.smtp_port, timeout=10)
        assert refused.value.smtp_code == 421 and refused.value.smtp_error.startswith(b"4.3.2")
    finally:
        for smtp in held:
            smtp.quit()

    def accepted() -> bool:
        try:
            smtplib.SMTP("127.0.0.1", limits_server.smtp_port, timeout=10).quit()
        except smtplib.SMTPConnectError:
            return False
        return True

    wait_for(accepted, message="a session once the others closed")


# --- durability and the database -------------------------------------------------------------------------------


def test_451_while_the_database_cannot_be_reached_then_accepted_again(server_env, demo_world):
    from django.conf import settings

    db = settings.DATABASES["default"]
    proxy = TcpProxy((db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432)))
    env = server_env | {
        "DATABASE_URL": f"postgres://{db.get('USER') or 'postgres'}@127.0.0.1:{proxy.port}/{db['NAME']}",
        "DB_POOL_TIMEOUT": "2",
    }
    server = start_server(env, name="mail-dbdown", worker=False)
    try:
        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as smtp:
            smtp.ehlo()
            smtp.mail("a@agent.example")
            assert smtp.rcpt(SKYPARK)[0] == 250
            proxy.cut()  # the database goes away between RCPT and the end of DATA
            code, text = smtp.data(raw_labels("DB-1"))
            assert code == 451 and text.startswith(b"4.3.0")
        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as smtp:  # a new session looks the agent up
            smtp.ehlo()
            smtp.mail("a@agent.example")
            code, text = smtp.rcpt(SKYPARK)
            assert code == 451 and text.startswith(b"4.3.0")
        proxy.restore()

        def accepted():
            try:
                with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as smtp:
                    return smtp.sendmail("a@agent.example", [SKYPARK], raw_labels("DB-2")) == {}
            except smtplib.SMTPException:
                return False

        wait_for(accepted, timeout=30, interval=0.5, message="mail accepted once the database is back")
        assert InboundEmail.objects.filter(body_hash__isnull=False, subject="Booking").exists()
    finally:
        server.stop()
        proxy.cut()


def test_a_repeat_delivery_gets_250_and_is_stored_as_duplicate(parkgate, demo_world):
    raw = raw_labels("DUP-1")
    for _ in range(2):
        with smtplib.SMTP("127.0.0.1", parkgate.smtp_port, timeout=10) as smtp:
            assert smtp.sendmail("a@agent.example", [SKYPARK], raw) == {}
    rows = list(InboundEmail.objects.order_by("id").values_list("status", "duplicate_of"))
    assert rows[1][0] == "duplicate" and rows[1][1] is not None
    wait_for(lambda: Booking.objects.filter(agent_ref="DUP-1").count() == 1, message="one booking")
    time.sleep(0.3)
    assert Booking.objects.filter(agent_ref="DUP-1").count() == 1


def test_sessions_from_one_client_may_pipeline_several_messages(parkgate, demo_world):
    with smtplib.SMTP("127.0.0.1", parkgate.smtp_port, timeout=10) as smtp:
        for n in range(3):
            assert smtp.sendmail("a@agent.example", [SKYPARK], raw_labels(f"MULTI-{n}")) == {}
    wait_for(lambda: Booking.objects.filter(agent_ref__startswith="MULTI-").count() == 3, message="3 bookings")


def test_two_agents_in_one_message_are_refused_for_the_second(parkgate, demo_world):
    with smtplib.SMTP("127.0.0.1", parkgate.smtp_port, timeout=10) as smtp:
        smtp.ehlo()
        smtp.mail("a@agent.example")
        assert smtp.rcpt(SKYPARK)[0] == 250
        assert smtp.rcpt("holidayx@bookings.parkgate.test")[0] == 452


def test_long_lines_from_old_systems_are_accepted(parkgate, demo_world):
    pairs = (line.split(": ", 1) for line in labels_text(ref="LONG-1").splitlines())
    cells = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in pairs)
    html = f"<html><body><table>{cells}</table>{' ' * 3000}</body></html>"  # one line of 3.8 kB
    raw = (
        "Subject: long\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n" + html + "\r\n"
    ).encode()
    with smtplib.SMTP("127.0.0.1", parkgate.smtp_port, timeout=10) as smtp:
        assert smtp.sendmail("a@agent.example", [SKYPARK], raw) == {}
    wait_for(lambda: Booking.objects.filter(agent_ref="LONG-1").exists(), message="booking from a one-line HTML body")


# --- input that must not confuse -------------------------------------------------------------------------------


def test_a_nul_or_control_character_in_an_address_is_501_and_the_session_goes_on(parkgate, demo_world):
    with smtplib.SMTP("127.0.0.1", parkgate.smtp_port, timeout=10) as smtp:
        smtp.ehlo()
        for bad in ("a\x00b@agent.example", "a@agent.example\x00", "a\x1bb@agent.example"):
            code, text = smtp.docmd("MAIL", f"FROM:<{bad}>")
            assert code == 501 and text.startswith(b"5.1.7"), (bad, code, text)
        assert smtp.mail("a@agent.example")[0] == 250
        for bad in ("sky\x00park@bookings.parkgate.test", SKYPARK + "\x00", "sky\x7fpark@bookings.parkgate.test"):
            code, text = smtp.docmd("RCPT", f"TO:<{bad}>")
            assert code == 501 and text.startswith(b"5.1.3"), (bad, code, text)
        assert smtp.rcpt(SKYPARK)[0] == 250
        code, reply = smtp.data(raw_labels("NUL-1"))
        assert code == 250, reply


def test_banner_and_ehlo_name_the_host_and_no_software(parkgate):
    with smtplib.SMTP(timeout=10) as smtp:
        greeting, banner = smtp.connect("127.0.0.1", parkgate.smtp_port)  # banner: the text after "220 "
        code, ehlo = smtp.ehlo()
        help_text = smtp.docmd("HELP")[1]
    assert greeting == 220 and banner.split()[0] == b"bookings.parkgate.test", banner
    assert code == 250 and ehlo.splitlines()[0] == b"bookings.parkgate.test", ehlo
    for reply in (banner, ehlo, help_text):
        assert b"python" not in reply.lower() and b"aiosmtpd" not in reply.lower(), reply
        assert not re.search(rb"\d+\.\d+", reply), reply  # no version number
