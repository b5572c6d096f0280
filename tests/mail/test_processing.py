"""What a stored message does to bookings (docs/email-ingress.md 2), through the real booking services on PostgreSQL."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from apps.bookings.models import Booking
from apps.carparks.models import CarPark
from apps.mail import services
from apps.mail.models import AgentBookingState, InboundEmail
from tests.mail.conftest import deliver, receive
from tests.mail.messages import CSV_HEADER, fixed_record, labels_text, message

S = InboundEmail.Status
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def labels(ref="SPX-1", status="New", at=T0, **kw):
    return message(labels_text(ref=ref, status=status, **kw), date=at)


def booking(ref, agent="skypark") -> Booking | None:
    return Booking.objects.filter(agent__code=agent, agent_ref=ref).select_related("carpark", "customer").first()


def test_new_creates_a_booking_through_the_booking_services(world):
    email = deliver(world["skypark"], labels())
    assert email.status == S.PROCESSED and email.sent_at == T0
    b = booking("SPX-1")
    assert (b.source, b.carpark.code, b.price, b.commission, b.currency) == (
        "email", "LHR-T5", Decimal("54.99"), Decimal("8.25"), "GBP",
    )  # fmt: skip
    assert b.arrival == datetime(2026, 11, 21, 5, 30, tzinfo=UTC)  # London is on GMT in November
    assert b.customer.name == "Jane Smith" and b.flight_outbound == "BA0117"
    assert list(b.vehicles.values_list("registration", "make", "colour")) == [("AB12CDE", "Ford", "Blue")]
    assert email.result == [
        {
            "row": 1,
            "action": "new",
            "agent_ref": "SPX-1",
            "result": "created",
            "booking": b.reference,
            "overbooked": False,
        }
    ]


def test_new_for_an_existing_reference_amends_and_amend_for_unknown_creates(world):
    agent = world["skypark"]
    assert deliver(agent, labels(status="Amended")).result[0]["result"] == "created"
    again = deliver(agent, labels(status="New", at=T0 + timedelta(minutes=1), plate="ZZ99 ZZZ"))
    assert again.result[0]["result"] == "amended"
    assert list(booking("SPX-1").vehicles.values_list("registration", flat=True)) == ["ZZ99ZZZ"]
    assert Booking.objects.filter(agent_ref="SPX-1").count() == 1


def test_a_job_run_twice_applies_nothing_twice(world):
    email = receive(world["skypark"], labels())
    assert services.inbound_email_process(message_id=email.id) == S.PROCESSED
    assert services.inbound_email_process(message_id=email.id) is None
    assert Booking.objects.filter(agent_ref="SPX-1").count() == 1


def test_cancel_for_an_unknown_reference_is_remembered_and_later_new_is_superseded(world):
    agent = world["skypark"]
    cancel = deliver(agent, labels(status="Cancelled", at=T0))
    assert cancel.status == S.PROCESSED and cancel.result[0]["result"] == "cancel_remembered"
    late_new = deliver(agent, labels(status="New", at=T0 + timedelta(hours=1)))
    assert late_new.status == S.SUPERSEDED and booking("SPX-1") is None
    assert AgentBookingState.objects.get(agent=agent, agent_ref="SPX-1").cancelled


def test_cancel_cancels_and_nothing_brings_the_booking_back(world):
    agent = world["skypark"]
    deliver(agent, labels(at=T0))
    assert deliver(agent, labels(status="Cancelled", at=T0 + timedelta(minutes=5))).result[0]["result"] == "cancelled"
    assert booking("SPX-1").status == "cancelled"
    amend = deliver(agent, labels(status="Amended", at=T0 + timedelta(minutes=10)))
    assert amend.status == S.SUPERSEDED and booking("SPX-1").status == "cancelled"


def test_messages_apply_in_date_order_an_older_one_is_superseded(world):
    agent = world["skypark"]
    deliver(agent, labels(status="Amended", at=T0 + timedelta(hours=2), plate="NEW1 AAA"))
    older = deliver(agent, labels(status="New", at=T0, plate="OLD1 BBB"))
    assert older.status == S.SUPERSEDED and "older than" in older.result[0]["note"]
    assert list(booking("SPX-1").vehicles.values_list("registration", flat=True)) == ["NEW1AAA"]
    older_cancel = deliver(agent, labels(status="Cancelled", at=T0 + timedelta(hours=1)))
    assert older_cancel.status == S.SUPERSEDED and booking("SPX-1").status == "confirmed"


def test_without_a_date_header_the_time_received_orders_it(world):
    agent = world["skypark"]
    deliver(agent, labels(at=None))
    future = deliver(agent, labels(status="Amended", at=timezone.now() + timedelta(days=1), plate="FUT1 AAA"))
    assert future.status == S.PROCESSED
    undated = deliver(agent, labels(status="Amended", at=None, plate="NOW1 AAA"))
    assert undated.sent_at is None and undated.status == S.SUPERSEDED


def test_a_repeat_is_stored_as_duplicate_and_applies_nothing(world):
    agent = world["skypark"]
    msg = labels()
    first = deliver(agent, msg)
    relayed = b"Received: from relay.example by mx.example; Sat, 21 Nov 2026 10:00:00 +0000\r\n" + msg.as_bytes(
        policy=msg.policy.clone(linesep="\r\n")
    )
    repeat = receive(agent, relayed)
    assert (repeat.status, repeat.duplicate_of_id) == (S.DUPLICATE, first.id)
    assert services.inbound_email_process(message_id=repeat.id) is None
    del msg["Message-ID"]
    no_id_1, no_id_2 = receive(agent, msg), receive(agent, msg)
    assert no_id_1.status == S.RECEIVED and (no_id_2.status, no_id_2.duplicate_of_id) == (S.DUPLICATE, no_id_1.id)


def test_unknown_car_park_fails_with_a_reason_then_reprocess_after_fixing(world, mailoutbox):
    agent = world["skypark"]
    agent.error_report_address = "errors@skypark.example"
    agent.save()
    email = deliver(agent, labels(carpark="BHX-1"))
    assert email.status == S.FAILED and "unknown car park 'BHX-1'" in email.error
    assert services.inbound_email_send_error_report(message_id=email.id) is True
    assert services.inbound_email_send_error_report(message_id=email.id) is False  # once only
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["errors@skypark.example"]
    assert "unknown car park 'BHX-1'" in mailoutbox[0].body
    CarPark.objects.create(code="BHX-1", name="Birmingham", capacity=10)
    agent.carparks.add(CarPark.objects.get(code="BHX-1"))
    call_command("reprocess_email", str(email.id))
    email.refresh_from_db()
    assert email.status == S.PROCESSED and booking("SPX-1").carpark.code == "BHX-1"


def test_agent_may_only_book_contracted_car_parks(world):
    agent = world["skypark"]
    agent.carparks.remove(CarPark.objects.get(code="MAN-T2"))
    email = deliver(agent, labels(carpark="MAN-T2"))
    assert email.status == S.FAILED and "not contracted for MAN-T2" in email.error


def test_price_in_another_currency_fails(world):
    email = deliver(world["skypark"], labels(price="EUR 54.99"))
    assert email.status == S.FAILED and "EUR" in email.error


def test_a_full_car_park_still_records_the_email_booking_as_overbooked(world):
    CarPark.objects.filter(code="MAN-T2").update(capacity=1)
    agent = world["skypark"]
    first = deliver(agent, labels(ref="A-1", carpark="MAN-T2"))
    second = deliver(agent, labels(ref="A-2", carpark="MAN-T2", plate="CD34 EFG"))
    assert first.result[0]["overbooked"] is False
    assert second.status == S.PROCESSED and second.result[0]["overbooked"] is True
    assert booking("A-2").overbooked and booking("A-2").status == "confirmed"


def csv_message(rows: str, at=T0):
    return message("See attached.", date=at, attachments=[((CSV_HEADER + rows).encode(), "text", "csv", "b.csv")])


def test_csv_applies_good_rows_reports_bad_rows_and_reprocess_reruns_only_those(world, mailoutbox):
    agent = world["holidayx"]
    agent.error_report_address = "ops@holidayx.example"
    agent.save()
    rows = (
        "NEW,HX-1,LHR-T5,2026-11-21 05:30,2026-11-28 22:15,Jane Smith,jane@example.com,,AB12CDE,54.99,8.25\n"
        "NEW,HX-2,NOPE,2026-11-21 05:30,2026-11-28 22:15,John Smith,,,CD34EFG,40.00,\n"
        "CANCEL,HX-1,,,,,,,,,\n"
        "AMEND,HX-1,LHR-T5,2026-11-21 05:30,2026-11-28 22:15,Jane Smith,,,AB12CDE,54.99,\n"
    )
    email = deliver(agent, csv_message(rows))
    assert email.status == S.PROCESSED
    assert [(r["line"], r["agent_ref"], r["result"]) for r in email.result] == [
        (2, "HX-1", "created"),
        (3, "HX-2", "failed"),
        (4, "HX-1", "cancelled"),
        (5, "HX-1", "superseded"),  # file order: the cancel came first and is final
    ]
    assert booking("HX-1", "holidayx").status == "cancelled"
    services.inbound_email_send_error_report(message_id=email.id)
    assert "line 3, reference HX-2: unknown car park 'NOPE'" in mailoutbox[0].body
    CarPark.objects.create(code="NOPE", name="Nope", capacity=5).agents.add(agent)
    assert services.inbound_email_reprocess(message_id=email.id) == S.PROCESSED
    email.refresh_from_db()
    assert [r["result"] for r in email.result] == ["created", "created", "cancelled", "superseded"]
    assert Booking.objects.filter(agent=agent).count() == 2


def test_an_over_long_reference_fails_its_row_only(world):
    rows = "CANCEL," + "R" * 65 + ",,,,,,,,,\nCANCEL,HX-OK,,,,,,,,,\n"
    email = deliver(world["holidayx"], csv_message(rows))
    assert [r["result"] for r in email.result] == ["failed", "cancel_remembered"]
    assert "longer than 64" in email.result[0]["error"]


def test_csv_with_only_a_header_is_ignored(world):
    assert deliver(world["holidayx"], csv_message("")).status == S.IGNORED


def test_fixed_records_apply_in_file_order(world):
    body = "\n".join(
        ["HDR LEGACY80", fixed_record("N", "L80-1"), fixed_record("A", "L80-1", plate="XY51ABC"), "CL80-2", "TRL 3"]
    )
    email = deliver(world["legacy80"], message(body, date=T0))
    assert [r["result"] for r in email.result] == ["created", "amended", "cancel_remembered"]
    b = booking("L80-1", "legacy80")
    assert b.customer.name == "SMITH/JANE" and list(b.vehicles.values_list("registration", flat=True)) == ["XY51ABC"]


def test_sweep_processes_what_the_queue_missed(world):
    email = receive(world["skypark"], labels())
    assert services.inbound_email_sweep() == 0  # too fresh: its job may still come
    InboundEmail.objects.filter(pk=email.id).update(received_at=timezone.now() - timedelta(minutes=1))
    assert services.inbound_email_sweep() == 1
    email.refresh_from_db()
    assert email.status == S.PROCESSED and booking("SPX-1") is not None


def test_raw_messages_are_deleted_after_the_retention_period_bookings_stay(world, settings):
    settings.RAW_EMAIL_RETENTION_DAYS = 90
    old, new = deliver(world["skypark"], labels()), deliver(world["skypark"], labels(ref="SPX-2"))
    InboundEmail.objects.filter(pk=old.id).update(received_at=timezone.now() - timedelta(days=91))
    assert services.inbound_email_purge_raw() == 1
    old.refresh_from_db()
    new.refresh_from_db()
    assert old.raw is None and old.raw_deleted_at and new.raw is not None
    assert booking("SPX-1") is not None


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe garbage",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: message/rfc822\r\n\r\n--x--",
        b"Content-Type: text/plain; charset=x-unknown-42\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!",
        b"Subject: a\x00b\r\nMessage-ID: <\x00@x>\r\n\r\nBooking Status: New\x00\r\nBooking Reference: N\x00UL\r\n",
    ],
)
def test_a_malformed_message_fails_or_is_ignored_and_the_next_one_still_applies(world, raw):
    agent = world["skypark"]
    bad = deliver(agent, raw)
    assert bad.status in (S.FAILED, S.IGNORED)
    assert deliver(agent, labels()).status == S.PROCESSED
