"""Fuzzing the parsers and the MIME handling: any input gives a parsed result or a clear failure (ParseFailure),
never an unhandled exception; and a malformed message never blocks the messages after it."""

import uuid
from email.message import EmailMessage

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.agents.models import Agent
from apps.mail.parsers import PARSERS, BookingAction, ParseFailure, parse_message
from tests.mail.conftest import deliver
from tests.mail.messages import CSV_HEADER, fixed_record, labels_text, message

FORMATS = sorted(PARSERS)
HEADERS = [
    b"Content-Type: text/plain; charset=utf-8",
    b"Content-Type: text/html; charset=windows-1252",
    b"Content-Type: text/plain; charset=bogus-99",
    b"Content-Type: multipart/mixed; boundary=b",
    b"Content-Type: multipart/alternative; boundary=b",
    b"Content-Type: message/rfc822",
    b"Content-Type: text/csv; name=x.csv",
    b"Content-Disposition: attachment; filename*=utf-8''%E2%82%AC.csv",
    b"Content-Transfer-Encoding: base64",
    b"Content-Transfer-Encoding: quoted-printable",
    b"Date: Sat, 21 Nov 2026 10:00:00 +9900",
    b"Date: 99 Foo 12345 99:99:99",
    b"Message-ID: <\x00@\xff>",
    b"Subject: =?utf-8?b?!!!?=",
    b"--b",
    b"--b--",
]
SEEDS = [
    labels_text().encode(),
    (CSV_HEADER + "NEW,HX-1,LHR-T5,2026-11-21 05:30,2026-11-28 22:15,A,,,AB12CDE,1,\n").encode(),
    (fixed_record() + "\n" + "CL80-9\n").encode(),
    b"<table><tr><td>Booking Status</td><td>New</td></tr><tr><td>Booking Reference</td><td>X</td></tr></table>",
]

lines = st.one_of(st.sampled_from(HEADERS), st.binary(max_size=80), st.sampled_from([b"", b"\r", b"\n"]))
raw_messages = st.one_of(
    st.binary(max_size=2000),
    st.builds(
        lambda head, sep, body, noise: b"\r\n".join(head) + sep + body + noise,
        st.lists(lines, max_size=12),
        st.sampled_from([b"\r\n\r\n", b"\n\n", b"\r\n"]),
        st.sampled_from(SEEDS),
        st.binary(max_size=200),
    ),
)


def check(result) -> None:
    assert isinstance(result.actions, list)
    for action in result.actions:
        assert isinstance(action, BookingAction)
        assert action.action in ("new", "amend", "cancel") or action.error


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fmt=st.sampled_from(FORMATS), raw=raw_messages)
def test_any_raw_bytes_parse_or_fail_clearly(fmt, raw):
    try:
        check(parse_message(fmt=fmt, raw=raw))
    except ParseFailure as exc:
        assert str(exc)


@settings(max_examples=150, deadline=None)
@given(
    fmt=st.sampled_from(FORMATS),
    text=st.text(max_size=500),
    subtype=st.sampled_from(["plain", "html"]),
    charset=st.sampled_from(["utf-8", "iso-8859-1", "windows-1252"]),
    cte=st.sampled_from(["quoted-printable", "base64", "8bit"]),
)
def test_any_text_in_real_mime_parses_or_fails_clearly(fmt, text, subtype, charset, cte):
    msg = EmailMessage()
    msg["Subject"] = "fuzz"
    try:
        msg.set_content(text, subtype=subtype, charset=charset, cte=cte)
    except (UnicodeError, ValueError):
        return  # the standard library cannot build it in that charset: not a message anyone sends
    try:
        check(parse_message(fmt=fmt, raw=msg.as_bytes()))
    except ParseFailure as exc:
        assert str(exc)


@settings(max_examples=100, deadline=None)
@given(prefix=st.text(max_size=300), suffix=st.text(max_size=300))
def test_surrounding_noise_never_hides_a_fixed_record(prefix, suffix):
    body = "\n".join([prefix.replace("\x00", ""), fixed_record("N", "L80-77"), suffix])
    msg = EmailMessage()
    msg.set_content(body)
    actions = parse_message(fmt="fixed", raw=msg.as_bytes()).actions
    assert "L80-77" in [a.agent_ref for a in actions]


@pytest.fixture
def skypark(world):
    return world["skypark"]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(raw=raw_messages, fmt=st.sampled_from(FORMATS))
def test_processing_any_message_ends_in_a_status_and_the_next_message_still_applies(skypark, raw, fmt):
    """Through the real services on PostgreSQL: a malformed message gets a final status, never an exception,
    and a good message after it is applied."""
    Agent.objects.filter(pk=skypark.pk).update(email_format=fmt)
    skypark.refresh_from_db()
    bad = deliver(skypark, raw)
    assert bad.status in ("processed", "failed", "ignored", "superseded", "duplicate")
    assert bad.status != "failed" or bad.error
    Agent.objects.filter(pk=skypark.pk).update(email_format="labels")
    skypark.refresh_from_db()
    good = deliver(skypark, message(labels_text(ref=f"AFTER-{uuid.uuid4().hex[:8]}")))
    assert good.status == "processed", good.error
