"""Subject access and erasure (issue 32): the contract commands on a customer whose data came in every way it does."""

import io
import json
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from apps.accounting import selectors as accounting
from apps.accounting import services as payments
from apps.bookings import services as bookings
from apps.bookings.models import Booking, Customer
from apps.core.models import AuditLog
from apps.core.services import audit_log_record
from apps.customers import scrub
from apps.customers.models import Erasure
from tests.customers.conftest import EMAIL, NAME, PHONE, PLATE, WEB_PLATE, decide, web_booking
from tests.support import database_url_for

TEXT_TYPES = ("text", "character varying", "json", "jsonb", "bytea")


def export(**who) -> dict:
    out = io.StringIO()
    call_command("customer_export", **who, stdout=out)
    return json.loads(out.getvalue())


def erase(**options) -> list[str]:
    out = io.StringIO()
    call_command("customer_erase", **options, stdout=out)
    return out.getvalue().splitlines()


def rows_naming(found) -> dict[str, int]:
    """Every text, JSON and byte column of every table, searched for the pattern in the database itself."""
    hits = {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type = ANY(%s)",
            [list(TEXT_TYPES)],
        )
        for table, column, data_type in cursor.fetchall():
            value = f"encode({column}, 'escape')" if data_type == "bytea" else f"{column}::text"
            cursor.execute(f'SELECT count(*) FROM "{table}" WHERE {value} ~* %s', [found.pattern])  # noqa: S608
            if n := cursor.fetchone()[0]:
                hits[f"{table}.{column}"] = n
    return hits


def test_export_then_erasure_leaves_the_books_and_no_trace(person):
    agent_booking, web = person.agent_booking, person.web_booking
    bystander = web_booking(
        person.brand, name="Bob Jones", email="bob@example.com", phone="01632 960001", plate="XY99 ZZZ"
    )

    # Jane drives in: her booking is found by the plate; while she is inside, erasure is refused.
    assert decide(person.device_id, "N-IN", PLATE, "r-1")["action"] == "open"
    with pytest.raises(CommandError, match="on site"):
        erase(email=EMAIL, reason="subject request", yes=True)
    assert decide(person.device_id, "N-OUT", PLATE, "r-2")["action"] == "open"
    audit_log_record(action="note", actor_label="ops", data={"text": f"{PLATE.lower()} parked across two bays"})

    # Money: the web booking is paid, then cancelled (refunded); what the agent booking owes is paid.
    web_balance = accounting.booking_balance(web.pk)
    payments.payment_record(booking_id=web.pk, amount=web_balance, method="card")
    bookings.booking_cancel(booking=web)
    with pytest.raises(CommandError, match=f"{web.reference} is owed a refund"):
        erase(plate=PLATE.replace(" ", "-"), reason="subject request", yes=True)
    payments.payment_record(booking_id=web.pk, amount=web_balance, method="card", kind="refund")
    if (owed := accounting.booking_balance(agent_booking.pk)) > 0:
        payments.payment_record(booking_id=agent_booking.pk, amount=owed, method="bank_transfer")

    document = export(email=EMAIL.upper())
    assert document["format"] == "parkgate.subject-access/1"
    assert {b["reference"] for b in document["bookings"]} == {agent_booking.reference, web.reference}
    assert {(p["name"], p["email"].lower(), p["phone"]) for p in document["people"]} == {(NAME, EMAIL, PHONE)}
    assert [r["plate"] for r in document["plate_reads"]] == ["AB12CDE", "AB12CDE"]
    assert len(document["visits"]) == 1 and document["visits"][0]["exited_at"]
    assert len(document["emails"]) == 1 and "Jane Smith" in document["emails"][0]["raw"]
    assert {p["kind"] for p in document["payments"]} >= {"payment", "refund"}
    assert "messages" in document and any("parked across" in str(a["data"]) for a in document["audit"])
    assert "Bob" not in json.dumps(document)
    by_plate = export(plate="ab12cde")
    assert {b["reference"] for b in by_plate["bookings"]} == {agent_booking.reference, web.reference}
    assert export(name="jane  smith")["bookings"]
    assert AuditLog.objects.filter(action="customer.export").count() == 3

    found = scrub.pattern(words=[NAME, EMAIL], compact=[PHONE, PLATE, WEB_PLATE, "A812C0E"])
    before = rows_naming(found)
    assert {"bookings_customer.name", "bookings_vehicle.registration", "access_plateread.plate",
            "access_visit.plate", "mail_inboundemail.raw", "core_auditlog.data"} <= set(before)  # fmt: skip
    books = accounting.trial_balance()
    lines = erase(email=EMAIL, reason="subject request (ticket 42)", yes=True)
    assert "bookings.Customer: 2" in lines and "access.PlateRead: 2" in lines and "access.Visit: 1" in lines
    assert "mail.InboundEmail: 1" in lines and any(line.startswith("erasure ") for line in lines)
    assert not any(x in "\n".join(lines) for x in (NAME, EMAIL, "AB12"))

    assert accounting.trial_balance() == books
    assert rows_naming(found) == {}
    erasure = Erasure.objects.get()
    assert erasure.reason == "subject request (ticket 42)" and sorted(erasure.booking_ids) == sorted(
        [agent_booking.pk, web.pk]
    )
    # The bookings keep their money and dates; the bystander keeps everything.
    agent_booking.refresh_from_db()
    assert agent_booking.price and agent_booking.customer.name == "Erased" and agent_booking.status == "departed"
    assert Customer.objects.get(pk=bystander.customer_id).email == "bob@example.com"
    assert Booking.objects.get(pk=bystander.pk).vehicles.get().registration == "XY99ZZZ"
    with pytest.raises(CommandError, match="nobody matches"):
        export(email=EMAIL)


def test_nobody_matching_exits_1_and_erases_nothing(person, server_env):
    env = server_env | {"DATABASE_URL": database_url_for(connection.settings_dict)}
    command = [sys.executable, "manage.py", "customer_erase", "--email", "nobody@example.com", "--reason", "x", "--yes"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "nobody matches" in done.stderr
    with pytest.raises(CommandError, match="nobody matches"):
        erase(plate="NO 5UCH", reason="request", yes=True)
    with pytest.raises(CommandError, match="still to come"):
        erase(email=EMAIL, reason="request", yes=True)
    assert not Erasure.objects.exists() and Customer.objects.filter(email__iexact=EMAIL).count() == 2
