"""Input that must not cost or confuse (#28): a message with a huge number of MIME parts or deep nesting fails
with a reason instead of taking the worker's CPU, and an absurd Date header neither crashes processing nor
decides the order of later messages."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from apps.mail.models import InboundEmail
from tests.mail.conftest import deliver
from tests.mail.messages import labels_text, message

S = InboundEmail.Status


def many_parts(count: int) -> bytes:
    head = b"Subject: many\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
    part = b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n"
    return head + part * count + b"--b--\r\n"


def nested(depth: int) -> bytes:
    head = b"Subject: deep\r\nMIME-Version: 1.0\r\n"
    opening = b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (n, n) for n in range(depth))
    closing = b"".join(b"\r\n--b%d--\r\n" % n for n in reversed(range(depth)))
    return head + opening + b"Content-Type: text/plain\r\n\r\n" + labels_text(ref="DEEP-1").encode() + closing


def test_a_message_with_twenty_thousand_parts_fails_with_the_reason_quickly(world):
    started = time.process_time()
    email = deliver(world["skypark"], many_parts(20_000))
    cpu = time.process_time() - started
    assert email.status == S.FAILED and "MIME parts" in email.error, email.error
    assert cpu < 5, f"{cpu:.1f} s of CPU for one message"  # the parser stops at the cap, not after every part


def forwarded_chain(depth: int) -> bytes:
    return b"Subject: fwd\r\n" + b"Content-Type: message/rfc822\r\n\r\n" * depth + labels_text(ref="FWD-9").encode()


@pytest.mark.parametrize("raw", [nested(60), forwarded_chain(60)], ids=["multipart", "message/rfc822"])
def test_nesting_too_deep_fails_with_the_reason(world, raw):
    email = deliver(world["skypark"], raw)
    assert email.status == S.FAILED and "nested" in email.error, email.error


def test_an_ordinary_multipart_message_is_unaffected(world):
    email = deliver(world["skypark"], nested(4))
    assert email.status == S.PROCESSED, email.error


def with_date(date_header: str, ref: str, status: str = "New", plate: str = "AB12 CDE") -> bytes:
    msg = message(labels_text(ref=ref, status=status, plate=plate))
    return f"Date: {date_header}\r\n".encode() + msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


@pytest.mark.parametrize(
    "date_header",
    [
        "Fri, 31 Dec 9999 23:59:59 -1200",  # past the last datetime Python has, once in UTC
        "Fri, 31 Dec 9999 23:59:59 +0000",
        "Mon, 01 Jan 0001 00:00:00 +1400",
        "Sat, 01 Jan 1 00:00:00 +0000",
        "Thu, 01 Jan 99999 00:00:00 +0000",
        "Sat, 21 Nov 2026 10:00:00 +9900",
        "not a date at all",
        "",
    ],
)
def test_an_absurd_date_header_is_no_crash_and_does_not_order_later_messages(world, date_header):
    agent = world["skypark"]
    first = deliver(agent, with_date(date_header, "DATE-1"))
    assert first.status == S.PROCESSED, first.error
    assert first.sent_at is None or first.sent_at < first.received_at + timedelta(days=2), first.sent_at
    # A later amendment with an ordinary Date is applied, not `superseded` by a Date in year 9999.
    soon = (timezone.now() + timedelta(minutes=1)).astimezone(UTC)  # after the first's time of receipt
    later = deliver(agent, with_date(soon.strftime("%a, %d %b %Y %H:%M:%S +0000"), "DATE-1", "Amended", "ZZ99 ZZZ"))
    assert later.status == S.PROCESSED and later.result[0]["result"] == "amended", later.result


def test_a_date_within_a_day_of_receipt_still_orders_messages(world):
    agent = world["skypark"]
    now = datetime.now(UTC)
    newer = deliver(agent, with_date((now + timedelta(hours=2)).strftime("%a, %d %b %Y %H:%M:%S +0000"), "ORD-1"))
    assert newer.status == S.PROCESSED and newer.sent_at is not None
    older = deliver(agent, with_date((now - timedelta(hours=3)).strftime("%a, %d %b %Y %H:%M:%S +0000"), "ORD-1"))
    assert older.status == S.SUPERSEDED, older.result
