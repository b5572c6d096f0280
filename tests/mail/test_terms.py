"""Agents' booking emails beyond the agent's terms or the bookable window (issue #28), over real SMTP to a real
`serve` + `worker`: an absurd commission is recorded as the contracted one and flagged for staff, and the month's
invoice stays sane; an absurd date fails the action with the reason."""

import smtplib
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.accounting import invoices as invoicing
from apps.accounting.models import Invoice
from apps.agents.models import Agent
from apps.bookings.models import Booking
from apps.mail.models import InboundEmail
from tests.mail.conftest import deliver
from tests.mail.messages import labels_text, message
from tests.support import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

SKYPARK = "skypark@bookings.parkgate.test"


def send(port: int, text: str) -> int:
    msg = message(text)
    with smtplib.SMTP("127.0.0.1", port, timeout=15) as smtp:
        smtp.ehlo()
        smtp.mail("res@skypark.example")
        smtp.rcpt(SKYPARK)
        code, reply = smtp.data(msg.as_bytes(policy=msg.policy.clone(linesep="\r\n")))
    assert code == 250, reply
    return int(reply.split()[-1])


def processed(message_id: int) -> InboundEmail:
    return wait_for(
        lambda: InboundEmail.objects.filter(pk=message_id, status__in=["processed", "failed"]).first(),
        message="the email processed",
    )


def test_an_absurd_commission_is_recorded_as_contracted_flagged_and_invoiced_sanely(parkgate, demo_world):
    text = labels_text(ref="GREED-1", price="£54.99").replace("Commission: £8.25", "Commission: £99,999,999.99")
    email = processed(send(parkgate.smtp_port, text))
    [entry] = email.result
    assert entry["result"] == "created" and entry["needs_review"] is True, entry

    booking = Booking.objects.get(agent_ref="GREED-1")
    assert booking.price == Decimal("54.99")
    assert booking.commission == Decimal("8.25")  # skypark's contracted 15%
    assert booking.needs_review and "commission" in booking.review_note

    skypark = Agent.objects.get(code="skypark")
    [invoice] = invoicing.agent_invoices_generate(agent_id=skypark.pk, month=timezone.localdate().replace(day=1))
    assert invoice.kind == Invoice.Kind.INVOICE
    assert (invoice.gross_total, invoice.commission_total, invoice.total) == (
        Decimal("54.99"),
        Decimal("8.25"),
        Decimal("46.74"),
    )
    assert not Invoice.objects.filter(kind=Invoice.Kind.CREDIT_NOTE).exists()


def test_a_date_outside_the_window_fails_the_action_with_the_reason(parkgate, demo_world):
    text = labels_text(ref="FAR-1").replace("Drop Off Date: 21/11/2026", "Drop Off Date: 31/12/9999")
    text = text.replace("Return Date: 28/11/2026", "Return Date: 31/12/9999")
    email = processed(send(parkgate.smtp_port, text))
    [entry] = email.result
    assert entry["result"] == "failed" and entry["error"].startswith("arrival must be"), entry
    assert not Booking.objects.filter(agent_ref="FAR-1").exists()


def test_under_the_refuse_policy_a_price_far_from_the_tariff_is_recorded_at_the_tariffs(demo_world):
    skypark = Agent.objects.get(code="skypark")
    Agent.objects.filter(pk=skypark.pk).update(price_policy="refuse", price_tolerance=Decimal("0.2"))
    skypark.refresh_from_db()
    email = deliver(skypark, message(labels_text(ref="CHEAP-1", price="£1.00")))
    assert email.result[0]["result"] == "created" and email.result[0]["needs_review"] is True
    booking = Booking.objects.get(agent_ref="CHEAP-1")
    assert booking.price == Decimal("95.00")  # LHR-T5's tariff for the 8 days
    assert booking.needs_review and booking.review_note.startswith("price 1.00 is more than 20% from")

    email = deliver(skypark, message(labels_text(ref="CHEAP-1", status="Amended", price="£2.00")))
    assert email.result[0]["result"] == "amended"
    booking.refresh_from_db()
    assert booking.price == Decimal("95.00") and booking.review_note.count("\n") == 1  # the amend's reason added
