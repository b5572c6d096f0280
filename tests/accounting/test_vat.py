"""VAT on the books: the rate in force (effective-dated, per car park or operator-wide), the split of every sale,
amendment, cancellation, allowance (partial refund), cancellation fee and overstay, reductions at the rate charged,
agents' invoices with VAT, and the quarter's summary (service level; the pages are in test_e2e.py)."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from apps.accounting import chart, selectors, services, vat
from apps.accounting import invoices as invoicing
from apps.accounting.models import LedgerLine, Payment, VatRate
from apps.core.models import AuditLog
from tests.accounting.factories import amend_booking, cancel_booking, make_booking

pytestmark = pytest.mark.django_db

D = Decimal


def held(booking, *codes: str) -> dict[tuple[str, Decimal | None], Decimal]:
    """The booking's lines per (account, rate), zero sums left out."""
    out: dict[tuple[str, Decimal | None], Decimal] = {}
    for line in LedgerLine.objects.filter(booking=booking, account__code__in=codes).select_related("account"):
        key = (line.account.code, line.vat_rate)
        out[key] = out.get(key, D("0")) + line.amount
    return {k: v for k, v in out.items() if v}


def test_the_rate_in_force_per_car_park_or_operator(carpark, euro_carpark):
    today = timezone.localdate()
    assert vat.rate_on(carpark_id=carpark.pk, day=today) == D("0.2000")  # the seeded UK standard rate
    VatRate.objects.create(carpark=carpark, valid_from=date(2030, 1, 1), rate=D("0.1750"))
    VatRate.objects.create(carpark=None, valid_from=date(2031, 1, 1), rate=D("0.2500"))
    assert vat.rate_on(carpark_id=carpark.pk, day=date(2029, 12, 31)) == D("0.2000")  # before its own: operator's
    assert vat.rate_on(carpark_id=carpark.pk, day=date(2030, 1, 1)) == D("0.1750")
    assert vat.rate_on(carpark_id=carpark.pk, day=date(2032, 1, 1)) == D("0.1750")  # its own from then on
    assert vat.rate_on(carpark_id=euro_carpark.pk, day=date(2031, 6, 1)) == D("0.2500")
    with pytest.raises(vat.VatRateMissing):
        vat.rate_on(carpark_id=carpark.pk, day=date(2011, 1, 3))


@pytest.mark.parametrize(
    ("gross", "rate", "net", "tax"),
    [
        ("54.99", "0.2", "45.82", "9.17"),  # 9.165 -> half up
        ("-54.99", "0.2", "-45.82", "-9.17"),  # symmetric: a reversal is the exact negation
        ("0.03", "0.2", "0.02", "0.01"),  # 0.005 -> half up
        ("10.00", "0.175", "8.51", "1.49"),
        ("7.00", "0", "7.00", "0.00"),
    ],
)
def test_split_rounds_vat_half_up_per_posting_and_net_is_the_rest(gross, rate, net, tax):
    part = vat.split(D(gross), D(rate))
    assert (part.net, part.vat, part.gross) == (D(net), D(tax), D(gross))


def test_a_rate_change_splits_increases_at_the_new_rate_and_reverses_at_the_rates_charged(carpark):
    booking = make_booking(carpark=carpark, price="120.00")
    assert held(booking, chart.PARKING_REVENUE, chart.OUTPUT_VAT) == {
        (chart.PARKING_REVENUE, D("0.2000")): D("-100.00"),
        (chart.OUTPUT_VAT, D("0.2000")): D("-20.00"),
    }
    VatRate.objects.create(carpark=carpark, valid_from=timezone.localdate(timezone=carpark.tz), rate=D("0.1750"))
    amend_booking(booking, price="150.00")  # +30.00 supplied at 17.5%: VAT 4.468 -> 4.47
    assert held(booking, chart.OUTPUT_VAT)[(chart.OUTPUT_VAT, D("0.1750"))] == D("-4.47")
    amend_booking(booking, price="100.00")  # -50.00: the 17.5% part (latest) in full, then 20.00 at 20%
    assert held(booking, chart.PARKING_REVENUE, chart.OUTPUT_VAT) == {
        (chart.PARKING_REVENUE, D("0.2000")): D("-83.33"),
        (chart.OUTPUT_VAT, D("0.2000")): D("-16.67"),
    }
    cancel_booking(booking)  # what is held is reversed exactly: no VAT left on a cancelled booking
    assert held(booking, chart.PARKING_REVENUE, chart.OUTPUT_VAT) == {}
    assert selectors.booking_balance(booking.pk) == 0 and selectors.trial_balance().balanced


def test_commission_carries_input_vat_and_follows_the_booking(carpark, agent):
    booking = make_booking(carpark=carpark, agent=agent, price="100.00")  # 15% commission: 15.00 incl. VAT
    assert held(booking, chart.COMMISSION_EXPENSE, chart.INPUT_VAT, chart.COMMISSION_PAYABLE) == {
        (chart.COMMISSION_EXPENSE, D("0.2000")): D("12.50"),
        (chart.INPUT_VAT, D("0.2000")): D("2.50"),
        (chart.COMMISSION_PAYABLE, D("0.2000")): D("-15.00"),
    }
    cancel_booking(booking)
    assert held(booking, chart.COMMISSION_EXPENSE, chart.INPUT_VAT, chart.COMMISSION_PAYABLE) == {}


def test_refund_record_pays_back_what_is_owed_and_turns_any_more_into_an_allowance_with_its_vat(carpark):
    booking = make_booking(carpark=carpark, price="100.00")
    services.payment_record(booking_id=booking.pk, amount=D("100.00"), method="card")
    with pytest.raises(services.PaymentInvalid, match="reason"):
        services.refund_record(booking_id=booking.pk, amount=D("30.00"), method="card", reason=" ")
    services.refund_record(booking_id=booking.pk, amount=D("30.00"), method="card", reason="barrier fault")
    # A partial refund of a live booking reduces the sale: 25.00 net and 5.00 VAT back, then 30.00 paid back.
    assert held(booking, chart.PARKING_REVENUE, chart.OUTPUT_VAT) == {
        (chart.PARKING_REVENUE, D("0.2000")): D("-58.33"),
        (chart.OUTPUT_VAT, D("0.2000")): D("-11.67"),
    }
    assert selectors.booking_balance(booking.pk) == 0
    assert AuditLog.objects.filter(action="accounting.allowance", data__reason="barrier fault").exists()
    assert AuditLog.objects.filter(action="accounting.refund", data__reason="barrier fault").exists()
    with pytest.raises(services.PostingError):  # more than what is left paid: nothing posted
        services.refund_record(booking_id=booking.pk, amount=D("70.01"), method="card", reason="too much")
    amend_booking(booking, price="100.00")  # an unrelated amendment keeps the allowance
    assert selectors.booking_balance(booking.pk) == 0
    cancel_booking(booking)  # the rest of the sale (70.00) is reversed with its VAT; 70.00 is owed back
    assert held(booking, chart.PARKING_REVENUE, chart.OUTPUT_VAT) == {}
    assert selectors.booking_balance(booking.pk) == D("-70.00")
    services.refund_record(booking_id=booking.pk, amount=D("70.00"), method="card", reason="cancelled")
    assert selectors.booking_balance(booking.pk) == 0
    assert held(booking, chart.PARKING_REVENUE, chart.OUTPUT_VAT) == {}  # owed back: no second VAT reversal
    assert list(Payment.objects.filter(booking=booking).order_by("pk").values_list("kind", "amount")) == [
        ("payment", D("100.00")),
        ("refund", D("30.00")),
        ("refund", D("70.00")),
    ]


def test_a_cancellation_fee_is_a_vat_inclusive_supply_after_the_cancellation(carpark):
    booking = make_booking(carpark=carpark, price="100.00")
    services.payment_record(booking_id=booking.pk, amount=D("100.00"), method="card")
    with pytest.raises(services.SaleInvalid, match="not cancelled"):
        services.cancellation_fee_post(booking_id=booking.pk, amount=D("15.00"))
    cancel_booking(booking)
    services.cancellation_fee_post(booking_id=booking.pk, amount=D("15.00"))
    cancel_booking(booking)  # a repeated cancel leaves the fee alone
    assert held(booking, chart.PARKING_REVENUE, chart.OUTPUT_VAT) == {
        (chart.PARKING_REVENUE, D("0.2000")): D("-12.50"),
        (chart.OUTPUT_VAT, D("0.2000")): D("-2.50"),
    }
    assert selectors.booking_balance(booking.pk) == D("-85.00")  # the refund due: paid less the fee
    with pytest.raises(services.SaleInvalid, match="exceeds the fee"):
        services.cancellation_fee_post(booking_id=booking.pk, amount=D("-15.01"))
    services.cancellation_fee_post(booking_id=booking.pk, amount=D("-15.00"), reason="fee waived")
    assert held(booking, chart.PARKING_REVENUE, chart.OUTPUT_VAT) == {}


def test_overstay_is_split_at_the_rate_in_force_on_the_exit_date(carpark):
    booking = make_booking(carpark=carpark, price="30.00", days_ahead=-10, length_days=2)
    exited = booking.departure + timedelta(hours=3)  # 2 started hours after the grace at 12.50
    exit_day = timezone.localdate(exited, timezone=carpark.tz)
    VatRate.objects.create(carpark=carpark, valid_from=exit_day, rate=D("0.0500"))
    services.overstay_charge_post(booking_id=booking.pk, exited_at=exited)
    assert held(booking, chart.OVERSTAY_REVENUE, chart.OUTPUT_VAT)[(chart.OVERSTAY_REVENUE, D("0.0500"))] == D(
        "-23.81"
    )  # 25.00 at 5%: VAT 1.19
    assert held(booking, chart.OUTPUT_VAT)[(chart.OUTPUT_VAT, D("0.0500"))] == D("-1.19")


def test_agent_invoice_lines_carry_output_and_input_vat(carpark, agent):
    a = make_booking(carpark=carpark, agent=agent, price="100.00")
    b = make_booking(carpark=carpark, agent=agent, price="54.99", commission="8.25")
    month = timezone.localdate().replace(day=1)
    [invoice] = invoicing.agent_invoices_generate(agent_id=agent.pk, month=month)
    lines = sorted(invoice.lines.values_list("reference", "vat_rate", "price", "price_vat", "commission_vat"))
    assert lines == [
        (a.reference, D("0.2000"), D("100.00"), D("16.67"), D("2.50")),
        (b.reference, D("0.2000"), D("54.99"), D("9.17"), D("1.38")),
    ]
    totals = (invoice.price_vat_total, invoice.commission_vat_total, invoice.total)
    assert totals == (D("25.84"), D("3.88"), D("131.74"))
    cancel_booking(a)
    [credit] = invoicing.agent_invoices_generate(agent_id=agent.pk, month=month)
    assert credit.kind == "credit_note"
    assert (credit.price_vat_total, credit.commission_vat_total) == (D("-16.67"), D("-2.50"))
    agent.vat_number = "GB 987 6543 21"  # the supplier of the commission, on the document
    agent.save(update_fields=["vat_number"])
    detail = selectors.invoice_detail(invoice_id=credit.pk)
    assert detail["vat_rates"][0]["percent"] == "20" and detail["price_net_total"] == D("-83.33")
    assert detail["agent"]["vat_number"] == "GB 987 6543 21" and "seller" in detail


def test_vat_summary_for_the_quarter(carpark, agent, capsys):
    make_booking(carpark=carpark, agent=agent, price="100.00")
    own = make_booking(carpark=carpark, price="60.00")
    cancel_booking(own)  # sold and cancelled in the quarter: no VAT
    quarter = vat.quarter_of(timezone.localdate(timezone=carpark.tz))
    start, end = vat.quarter_parse(quarter)
    [gbp] = vat.vat_summary(start=start, end=end)["currencies"]
    assert (gbp["output_vat"], gbp["input_vat"], gbp["net_due"]) == (D("16.67"), D("2.50"), D("14.17"))
    assert (gbp["net_sales"], gbp["net_commission"]) == (D("83.33"), D("12.50"))
    call_command("vat_summary", "--quarter", quarter)
    out = capsys.readouterr().out
    assert "GBP: output VAT 16.67 on net sales 83.33" in out and "GBP: net VAT due 14.17" in out
    assert vat.quarter_parse("2026-Q1") == (date(2026, 1, 1), date(2026, 3, 31))
    assert vat.quarter_parse("2026-q4") == (date(2026, 10, 1), date(2026, 12, 31))
    next_year = start.replace(year=start.year + 1)
    assert vat.vat_summary(start=next_year, end=next_year + timedelta(days=90))["currencies"] == []


def test_chart_has_output_and_input_vat_accounts(chart_of_accounts):
    from apps.accounting.models import Account

    names = dict(Account.objects.filter(code__in=[chart.OUTPUT_VAT, chart.INPUT_VAT]).values_list("code", "name"))
    assert "VAT" in names[chart.OUTPUT_VAT] and "VAT" in names[chart.INPUT_VAT]
