"""The ledger's rules on real PostgreSQL: bookings post through the bookings signals, entries balance and are
immutable (in the models and in the database), closed months refuse postings, payments move booking balances."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, InternalError, connection, transaction
from django.utils import timezone

from apps.accounting import chart, selectors, services
from apps.accounting.ledger import Line, PeriodClosed, PostingError, Unbalanced, transaction_post
from apps.accounting.models import ImmutableError, LedgerLine, LedgerTransaction
from apps.bookings.models import Booking
from tests.accounting.factories import amend_booking, cancel_booking, make_booking

pytestmark = pytest.mark.django_db

D = Decimal


def account_balance(code: str, **filters) -> Decimal:
    lines = LedgerLine.objects.filter(account__code=code, **filters)
    return sum((line.amount for line in lines), D("0"))


def test_a_sold_booking_posts_receivable_and_revenue(carpark):
    booking = make_booking(carpark=carpark, price="54.99")
    assert selectors.booking_balance(booking.pk) == D("54.99")
    assert account_balance(chart.PARKING_REVENUE) == D("-45.82")  # net: 54.99 less its VAT at 20%
    assert account_balance(chart.OUTPUT_VAT) == D("-9.17")  # 54.99 x 0.2 / 1.2 = 9.165, half up
    assert account_balance(chart.COMMISSION_EXPENSE) == 0  # not an agent's booking
    txn = LedgerTransaction.objects.get(booking=booking)
    assert txn.currency == "GBP" and txn.kind == "booking" and txn.date == timezone.localdate(timezone=carpark.tz)


def test_agent_commission_from_rate_or_from_the_stated_amount(carpark, agent):
    by_rate = make_booking(carpark=carpark, agent=agent, price="100.00")
    stated = make_booking(carpark=carpark, agent=agent, price="54.99", commission="8.25")
    assert account_balance(chart.COMMISSION_EXPENSE, booking=by_rate) == D("12.50")  # net of 2.50 input VAT
    assert account_balance(chart.INPUT_VAT, booking=by_rate) == D("2.50")
    assert account_balance(chart.COMMISSION_EXPENSE, booking=stated) == D("6.87")
    assert account_balance(chart.INPUT_VAT, booking=stated) == D("1.38")  # 1.375, half up
    assert account_balance(chart.COMMISSION_PAYABLE, agent=agent) == D("-23.25")


def test_amendment_posts_the_difference_and_cancellation_reverses_it(carpark, agent):
    booking = make_booking(carpark=carpark, agent=agent, price="100.00")
    amend_booking(booking, price="120.00")
    assert account_balance(chart.PARKING_REVENUE, booking=booking) == D("-100.00")
    assert account_balance(chart.OUTPUT_VAT, booking=booking) == D("-20.00")
    assert account_balance(chart.COMMISSION_EXPENSE, booking=booking) == D("15.00")
    assert account_balance(chart.INPUT_VAT, booking=booking) == D("3.00")
    amend_booking(booking, price="120.00")  # nothing changed: nothing posted
    assert LedgerTransaction.objects.filter(booking=booking).count() == 2
    cancel_booking(booking)
    cancel_booking(booking)  # a repeated cancel changes nothing
    assert LedgerTransaction.objects.filter(booking=booking).count() == 3
    assert account_balance(chart.PARKING_REVENUE, booking=booking) == 0
    assert account_balance(chart.OUTPUT_VAT, booking=booking) == 0
    assert account_balance(chart.INPUT_VAT, booking=booking) == 0
    assert account_balance(chart.COMMISSION_PAYABLE, booking=booking) == 0
    assert selectors.booking_balance(booking.pk) == 0


def test_payments_and_refunds_move_the_booking_balance(carpark):
    booking = make_booking(carpark=carpark, price="60.00")
    services.payment_record(booking_id=booking.pk, amount=D("40.00"), method="card", external_reference="ch_1")
    assert selectors.booking_balance(booking.pk) == D("20.00")
    assert account_balance(chart.CARD) == D("40.00")
    with pytest.raises(services.PaymentInvalid, match="exceeds the balance"):
        services.payment_record(booking_id=booking.pk, amount=D("20.01"), method="cash")
    with pytest.raises(services.PaymentInvalid, match="owed back"):
        services.payment_record(booking_id=booking.pk, amount=D("1.00"), method="card", kind="refund")
    cancel_booking(booking)
    assert selectors.booking_balance(booking.pk) == D("-40.00")  # a refund is due
    services.payment_record(booking_id=booking.pk, amount=D("40.00"), method="card", kind="refund")
    assert selectors.booking_balance(booking.pk) == 0
    assert account_balance(chart.CARD) == 0
    statement = selectors.booking_statement(booking_id=booking.pk)
    assert [p["kind"] for p in statement["payments"]] == ["payment", "refund"]
    assert statement["balance"] == 0


@pytest.mark.parametrize("amount", [D("0"), D("-1.00"), D("1.001")])
def test_payment_amount_must_be_positive_whole_cents(carpark, amount):
    booking = make_booking(carpark=carpark)
    with pytest.raises(services.PaymentInvalid):
        services.payment_record(booking_id=booking.pk, amount=amount, method="cash")


def test_unbalanced_posting_is_refused_by_the_service(carpark):
    with pytest.raises(Unbalanced):
        transaction_post(
            day=date.today(),
            kind="adjustment",
            currency="GBP",
            lines=[Line(chart.CASH, D("10.00")), Line(chart.PARKING_REVENUE, D("-9.99"))],
        )
    with pytest.raises(PostingError, match="fractions of a cent"):
        transaction_post(
            day=date.today(),
            kind="adjustment",
            currency="GBP",
            lines=[Line(chart.CASH, D("0.001")), Line(chart.PARKING_REVENUE, D("-0.001"))],
        )
    assert not LedgerTransaction.objects.exists()


def test_unbalanced_transaction_cannot_commit_in_the_database(carpark, chart_of_accounts):
    """Code that bypasses the service (raw bulk_create) still cannot commit an unbalanced transaction."""
    ids = dict(LedgerLine._meta.get_field("account").related_model.objects.values_list("code", "id"))
    with pytest.raises(IntegrityError, match="does not balance"), transaction.atomic():
        txn = LedgerTransaction.objects.create(date=date.today(), kind="adjustment", currency="GBP")
        LedgerLine.objects.create(transaction=txn, account_id=ids[chart.CASH], amount=D("5.00"))
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS accounting_ledger_balanced IMMEDIATE")  # what COMMIT would do


def test_entries_are_immutable_in_models_and_database(carpark):
    booking = make_booking(carpark=carpark)
    txn = LedgerTransaction.objects.get(booking=booking)
    line = txn.lines.first()
    line.amount = D("1.00")
    with pytest.raises(ImmutableError):
        line.save()
    with pytest.raises(ImmutableError):
        line.delete()
    with pytest.raises(ImmutableError):
        txn.save()
    with pytest.raises(ImmutableError):
        txn.delete()
    with pytest.raises(IntegrityError, match="immutable"), transaction.atomic():
        LedgerLine.objects.filter(pk=line.pk).update(amount=D("1.00"))
    with pytest.raises(IntegrityError, match="immutable"), transaction.atomic():
        LedgerLine.objects.filter(pk=line.pk).delete()
    with pytest.raises((IntegrityError, InternalError)), transaction.atomic():
        Booking.objects.filter(pk=booking.pk).delete()  # PROTECTed by its ledger


def test_posting_into_a_closed_month_is_refused_and_rolls_the_booking_back(carpark):
    today = timezone.localdate(timezone=carpark.tz)
    services.period_close(month=today)
    with pytest.raises(PeriodClosed, match=f"{today:%Y-%m} is closed"):
        make_booking(carpark=carpark, price="30.00")
    assert not Booking.objects.exists()  # the receiver's error rolled the booking back
    services.period_reopen(month=today)
    booking = make_booking(carpark=carpark, price="30.00")
    assert selectors.booking_balance(booking.pk) == D("30.00")


def test_payment_dated_in_a_closed_month_is_refused(carpark):
    booking = make_booking(carpark=carpark, price="30.00")
    last_month = timezone.localdate().replace(day=1) - timedelta(days=1)
    services.period_close(month=last_month)
    received = timezone.now().replace(day=1) - timedelta(days=2)
    with pytest.raises(PeriodClosed):
        services.payment_record(booking_id=booking.pk, amount=D("10.00"), method="cash", received_at=received)
    assert not booking.payments.exists()


def test_trial_balance_per_currency(carpark, euro_carpark, agent):
    make_booking(carpark=carpark, agent=agent, price="100.00")
    euro = make_booking(carpark=euro_carpark, price="80.00")
    services.payment_record(booking_id=euro.pk, amount=D("80.00"), method="bank_transfer")
    tb = selectors.trial_balance()
    assert tb.balanced
    totals = tb.totals()
    assert totals["GBP"] == (D("115.00"), D("115.00"))
    assert totals["EUR"] == (D("160.00"), D("160.00"))
    rows = {(r.currency, r.code): r.balance for r in tb.rows}
    assert rows[("EUR", chart.BANK)] == D("80.00") and rows[("EUR", chart.BOOKING_RECEIVABLES)] == 0
    assert rows[("GBP", chart.COMMISSION_PAYABLE)] == D("-15.00")
