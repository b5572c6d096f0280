"""Accounting from outside the process: accountants and staff over HTTP (httpx) against a real `serve` + `worker`
on PostgreSQL and Redis, and `manage.py trial_balance` as a command-line user runs it."""

import csv
import io
import re
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.utils import timezone

from apps.accounting import chart
from apps.accounting.models import Account, Invoice, LedgerLine, LedgerTransaction, Payment
from apps.agents.models import Agent
from apps.bookings import services as bookings
from apps.carparks.models import CarPark
from tests.support import ROOT

PASSWORD = "correct-horse-battery"


def staff(username: str, role: str, *carparks: str):
    from apps.staff.services import staff_member_set

    return staff_member_set(username=username, password=PASSWORD, carpark_codes=list(carparks), role=role)


def login(server, username: str) -> httpx.Client:
    client = httpx.Client(base_url=server.http, follow_redirects=False, timeout=20)
    form = client.get("/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    answer = client.post(
        "/accounts/login/", data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token}
    )
    assert answer.status_code == 302, answer.text
    return client


def post(client: httpx.Client, url: str, data: dict) -> httpx.Response:
    return client.post(url, data=data, headers={"X-CSRFToken": client.cookies.get("csrftoken", "")})


def book(carpark_code: str, plate: str, *, agent: str | None = None, price: str = "80.00"):
    arrival = timezone.now() + timedelta(days=2)
    return bookings.booking_create(
        carpark=CarPark.objects.get(code=carpark_code),
        arrival=arrival,
        departure=arrival + timedelta(days=3),
        customer_name="Jane Smith",
        vehicles=[{"registration": plate}],
        source="api" if agent else "staff",
        price=Decimal(price),
        agent=Agent.objects.get(code=agent) if agent else None,
        agent_ref=f"E2E-{plate}" if agent else None,
    )


@pytest.mark.django_db(transaction=True)
def test_accountant_pages_invoices_and_staff_payments_over_http(parkgate, demo_world):
    staff("alice", "accountant", "LHR-T5")
    staff("oscar", "operator", "LHR-T5")
    staff("mandy", "operator", "MAN-T2")
    sold = [book("LHR-T5", f"AG{n}XYZ", agent="skypark", price="100.00") for n in range(3)]
    own = book("LHR-T5", "CU5TOM", price="60.00")

    assert httpx.get(f"{parkgate.http}/accounting/").status_code == 302  # anonymous: to the login form
    oscar = login(parkgate, "oscar")
    assert oscar.get("/accounting/").status_code == 403  # not an accountant
    alice = login(parkgate, "alice")

    home = alice.get("/accounting/")
    assert home.status_code == 200 and 'id="balanced"' in home.text and "NOT balanced" not in home.text
    assert 'data-account="1100"' in home.text and "360.00" in home.text  # 3 x 100 + 60 sold
    # net and VAT, VAT rounded per posting: 3 x (83.33 + 16.67) + (50.00 + 10.00)
    assert 'data-account="4000"' in home.text and "299.99" in home.text
    assert 'data-account="2200"' in home.text and "60.01" in home.text

    month = f"{timezone.localdate():%Y-%m}"
    skypark = Agent.objects.get(code="skypark")
    issued = post(alice, "/accounting/invoices/", {"month": month, "agent": skypark.pk})
    assert issued.status_code == 302
    invoice = Invoice.objects.get(agent=skypark)
    assert invoice.line_count == 3 and invoice.total == Decimal("255.00")  # less 15% commission
    listing = alice.get("/accounting/invoices/")
    assert f'data-number="{invoice.number}"' in listing.text

    printable = alice.get(f"/accounting/invoices/{invoice.pk}/")
    assert printable.status_code == 200 and invoice.number in printable.text
    assert all(b.reference in printable.text for b in sold) and "255.00 GBP" in printable.text
    # A VAT invoice: the seller's VAT number, and net, rate, VAT and gross of the parking and of the commission.
    assert "VAT invoice" in printable.text and "GB 123 4567 89" in printable.text
    assert re.search(r'id="price-vat">\s*50\.01<', printable.text)  # 3 x 16.67 (VAT rounded per booking)
    assert re.search(r'id="commission-vat">\s*7\.50<', printable.text)  # 3 x 2.50 on 15.00 commission
    assert re.search(r"<td class=n>20%</td><td class=n>83\.33</td><td class=n>16\.67</td>", printable.text)
    rows = list(csv.reader(io.StringIO(alice.get(f"/accounting/invoices/{invoice.pk}.csv").text)))
    assert rows[0][:2] == ["invoice", "booking"] and len(rows) == 4
    assert sum(Decimal(r[6]) for r in rows[1:]) == invoice.total
    assert rows[0][8:] == ["vat_rate", "price_net", "price_vat", "commission_net", "commission_vat"]
    assert rows[1][8:] == ["0.2000", "83.33", "16.67", "12.50", "2.50"]

    assert post(alice, f"/accounting/invoices/{invoice.pk}/paid", {}).status_code == 302
    invoice.refresh_from_db()
    assert invoice.status == "paid"

    statement = alice.get(f"/accounting/agents/{skypark.pk}/statement")
    assert statement.status_code == 200 and invoice.number in statement.text
    statement_csv = list(csv.reader(io.StringIO(alice.get(f"/accounting/agents/{skypark.pk}/statement.csv").text)))
    assert statement_csv[1][0] == invoice.number and statement_csv[1][7] == "255.00"
    assert alice.get("/accounting/agents/999999/statement").status_code == 404
    assert alice.get("/accounting/agents/999999/statement.csv").status_code == 404

    # Staff record a payment on a customer's booking at their car park; others do not even see it.
    assert login(parkgate, "mandy").get(f"/accounting/bookings/{own.reference}/").status_code == 404
    page = oscar.get(f"/accounting/bookings/{own.reference}/")
    assert page.status_code == 200 and "60.00 GBP" in page.text
    paid = post(
        oscar,
        f"/accounting/bookings/{own.reference}/",
        {"kind": "payment", "method": "card", "amount": "45.00", "external_reference": "slip-77"},
    )
    assert paid.status_code == 302
    assert Payment.objects.get(booking=own).external_reference == "slip-77"
    too_much = post(
        oscar, f"/accounting/bookings/{own.reference}/", {"kind": "payment", "method": "cash", "amount": "15.01"}
    )
    assert too_much.status_code == 200 and "exceeds the balance due" in too_much.text
    assert "15.00 GBP" in oscar.get(f"/accounting/bookings/{own.reference}/").text

    # The same through the JSON API (staff session + CSRF header).
    account = oscar.get(f"/accounting/api/bookings/{own.reference}")
    assert account.status_code == 200 and account.json()["balance"] == "15.00"
    assert account.json()["payments"][0]["external_reference"] == "slip-77"
    api_url = f"/accounting/api/bookings/{own.reference}/payments"
    created = oscar.post(
        api_url,
        json={"method": "cash", "amount": "5.00", "external_reference": "till-3"},
        headers={"X-CSRFToken": oscar.cookies.get("csrftoken", "")},
    )
    assert created.status_code == 201, created.text
    assert created.json()["balance"] == "10.00" and created.json()["payment"]["method"] == "cash"
    refused = oscar.post(
        api_url, json={"method": "cash", "amount": "10.01"}, headers={"X-CSRFToken": oscar.cookies["csrftoken"]}
    )
    assert refused.status_code == 422 and refused.json()["error"] == "payment_refused"
    assert oscar.post(api_url, json={"method": "cash", "amount": "1.00"}).status_code == 403  # no CSRF token
    assert httpx.get(f"{parkgate.http}/accounting/api/bookings/{own.reference}").status_code == 401
    assert login(parkgate, "mandy").get(f"/accounting/api/bookings/{own.reference}").status_code == 404

    ledger = alice.get(f"/accounting/ledger/{chart.BOOKING_RECEIVABLES}/")
    assert ledger.status_code == 200 and own.reference in ledger.text
    revenue = alice.get(f"/accounting/ledger/{chart.PARKING_REVENUE}/").text
    assert re.search(r'<td class="n">\s*83\.33</td>', revenue)  # credits shown in full, not rounded
    ledger_csv = alice.get(f"/accounting/ledger/{chart.CARD}.csv").text
    assert "slip-77" in ledger_csv and "45.00" in ledger_csv

    # The quarter's VAT for the return: 60.01 output (sales), 7.50 input (commission), 52.51 due.
    quarter = f"{timezone.localdate().year}-Q{(timezone.localdate().month - 1) // 3 + 1}"
    assert oscar.get(f"/accounting/vat/?quarter={quarter}").status_code == 403  # accountants only
    vat_page = alice.get(f"/accounting/vat/?quarter={quarter}")
    assert vat_page.status_code == 200, vat_page.text
    for field, amount in (("output_vat", "60.01"), ("input_vat", "7.50"), ("net_due", "52.51")):
        assert re.search(rf'data-field="{field}">{amount}<', vat_page.text), (field, vat_page.text)
    assert alice.get("/accounting/vat/?quarter=2026-Q7").status_code == 404

    # Closing the month from the page: a new booking dated in it is refused.
    assert post(alice, "/accounting/periods", {"month": month, "action": "close"}).status_code == 302
    from apps.accounting.ledger import PeriodClosed

    with pytest.raises(PeriodClosed):
        book("LHR-T5", "L4TE1")


@pytest.mark.django_db(transaction=True)
def test_trial_balance_command_line(server_env, demo_world):
    book("LHR-T5", "TB1AAA", agent="holidayx", price="50.00")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "trial_balance", *args],
            env=server_env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    ok = run("--month", f"{timezone.localdate():%Y-%m}")
    assert ok.returncode == 0, ok.stderr
    assert "4000 Parking revenue" in ok.stdout and "Balanced." in ok.stdout
    assert re.search(r"2200 Output VAT\s+GBP\s+0\.00\s+8\.33\s+-8\.33", ok.stdout), ok.stdout  # 50 x 1/6
    assert re.search(r"1400 Input VAT\s+GBP\s+1\.00\s+0\.00\s+1\.00", ok.stdout), ok.stdout  # on 6.00
    assert re.search(r"TOTAL\s+GBP\s+56\.00\s+56\.00\s+0\.00", ok.stdout), ok.stdout  # 50.00 + 12% commission
    assert run("--month", "2026-13").returncode == 2  # a malformed command line
    assert run("--bogus").returncode == 2


class Rollback(Exception):
    pass


@pytest.mark.django_db
def test_trial_balance_exits_1_when_the_ledger_does_not_balance(carpark, chart_of_accounts, capsys):
    """Unbalanced lines can only exist before COMMIT (the database refuses to commit them): seen from inside,
    in a savepoint rolled back afterwards (which also drops the database's pending balance check)."""
    with pytest.raises(Rollback), transaction.atomic():
        txn = LedgerTransaction.objects.create(date=timezone.localdate(), kind="adjustment", currency="GBP")
        cash = Account.objects.get(code=chart.CASH)
        LedgerLine.objects.create(transaction=txn, account=cash, amount=Decimal("9.99"))
        with pytest.raises(CommandError) as failed:
            call_command("trial_balance")
        assert failed.value.returncode == 1 and "does NOT balance" in str(failed.value)
        assert "9.99" in capsys.readouterr().out
        raise Rollback
