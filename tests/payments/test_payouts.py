"""Card clearing against Stripe's payouts. Payments and refunds are made on localstripe; localstripe has no payout
schedule and cannot list balance transactions by payout (docs/payments.md), so the payouts are read from a small
HTTP server standing in for Stripe's list endpoints, answering in Stripe's documented list shape (pages of two,
`has_more` / `starting_after`, `expand[]=data.source`). Then: matched, posted once (bank, fees, card clearing),
clearing reconciled, and the accountants' page."""

import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import call_command
from django.test import Client

from apps.accounting import chart, selectors
from apps.accounting.models import LedgerLine, LedgerTransaction
from apps.bookings.services import booking_cancel
from apps.payments.models import Payment, Payout, Refund
from apps.payments.payouts import clearing_reconciliation
from apps.staff.services import staff_member_set
from tests.bookings.conftest import make_world
from tests.payments.test_services import paid_booking

pytestmark = pytest.mark.django_db(transaction=True)

PAGE = 2  # Stripe pages by `limit`; this one pages by two whatever is asked, so following `has_more` is tested


class StripeLists(BaseHTTPRequestHandler):
    """GET /v1/payouts and GET /v1/balance_transactions?payout=..., as Stripe's API reference describes them."""

    payouts: list[dict] = []
    transactions: dict[str, list[dict]] = {}
    seen: list[str] = []

    def do_GET(self):
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        self.seen.append(self.path)
        if self.headers.get("Authorization") != "Bearer sk_test_parkgate":
            return self._send(401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key"}})
        if url.path == "/v1/payouts":
            items = self.payouts
        elif url.path == "/v1/balance_transactions":
            items = self.transactions.get(query.get("payout", [""])[0], [])
            if "data.source" not in [v for k, vs in query.items() if k.startswith("expand[") for v in vs]:
                items = [{**t, "source": t["source"]["id"]} for t in items]
        else:
            return self._send(404, {"error": {"type": "invalid_request_error", "message": "Unrecognized URL"}})
        after = query.get("starting_after", [None])[0]
        start = next(i + 1 for i, item in enumerate(items) if item["id"] == after) if after else 0
        page = items[start : start + PAGE]
        self._send(200, {"object": "list", "url": url.path, "has_more": start + PAGE < len(items), "data": page})

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def stripe_lists():
    server = ThreadingHTTPServer(("127.0.0.1", 0), StripeLists)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def txn(id_: str, type_: str, amount: int, fee: int, source: dict) -> dict:
    return {"id": id_, "object": "balance_transaction", "type": type_, "amount": amount, "fee": fee,
            "net": amount - fee, "currency": "gbp", "source": source, "status": "available"}  # fmt: skip


def payout(id_: str, amount: int, status: str) -> dict:
    return {"id": id_, "object": "payout", "amount": amount, "currency": "gbp", "status": status,
            "arrival_date": 1796083200, "created": 1795910400, "type": "bank_account"}  # fmt: skip


def charge(payment: Payment) -> dict:
    return {"id": f"ch_{payment.pk}", "object": "charge", "payment_intent": payment.intent_id}


def test_payouts_are_matched_posted_once_with_their_fees_and_clearing_reconciles(
    stripe_settings, localstripe, stripe_lists
):
    world = make_world()
    one, two, three = (paid_booking(world, localstripe, email=f"c{n}@example.com") for n in range(3))
    booking_cancel(booking=two)  # refunded in full on localstripe (job in this thread)
    paid = {b.pk: Payment.objects.get(booking=b) for b in (one, two, three)}
    refund = Refund.objects.get(payment__booking=two, status="succeeded")
    minor = {pk: int(p.amount * 100) for pk, p in paid.items()}
    fee = {pk: round(m * 0.015) + 20 for pk, m in minor.items()}  # 1.5% + 20p
    settled_one = [
        txn("txn_1", "charge", minor[one.pk], fee[one.pk], charge(paid[one.pk])),
        txn("txn_2", "charge", minor[two.pk], fee[two.pk], charge(paid[two.pk])),
        txn("txn_3", "refund", -minor[two.pk], 0, {"id": refund.provider_refund_id, "object": "refund"}),
        txn("txn_4", "stripe_fee", -150, 0, {"id": "fee_radar", "object": "fee"}),
    ]
    net_one = sum(t["net"] for t in settled_one)
    StripeLists.payouts = [
        payout("po_paid", net_one, "paid"),
        payout("po_pending", 9800, "pending"),  # not ours: a charge we never made
    ]
    StripeLists.transactions = {
        "po_paid": [*settled_one, txn("txn_5", "payout", -net_one, 0, {"id": "po_paid", "object": "payout"})],
        "po_pending": [
            txn("txn_9", "charge", 10000, 200, {"id": "ch_x", "object": "charge", "payment_intent": "pi_x"})
        ],
    }
    stripe_settings.STRIPE_API_BASE = f"http://127.0.0.1:{stripe_lists.server_port}"
    clearing_before = sum(LedgerLine.objects.filter(account__code=chart.CARD).values_list("amount", flat=True))

    out = StringIO()
    call_command("import_payouts", "--days", "3650", stdout=out)
    assert "po_paid" in out.getvalue() and "UNMATCHED" in out.getvalue()
    assert any("starting_after=txn_2" in path for path in StripeLists.seen)  # every page was read

    posted = Payout.objects.get(payout_id="po_paid")
    fees = Decimal(fee[one.pk] + fee[two.pk] + 150) / 100
    assert posted.matched and posted.status == "paid" and posted.ledger_transaction is not None
    assert (posted.settled, posted.fees, posted.amount) == (paid[one.pk].amount, fees, Decimal(net_one) / 100)
    lines = {line.balance_transaction_id: line for line in posted.lines.all()}
    assert lines["txn_1"].payment == paid[one.pk] and lines["txn_3"].refund == refund and "txn_5" not in lines
    pending = Payout.objects.get(payout_id="po_pending")
    assert not pending.matched and pending.ledger_transaction is None and not pending.lines.get().matched

    def balance(code: str) -> Decimal:
        return sum(LedgerLine.objects.filter(account__code=code).values_list("amount", flat=True), Decimal("0"))

    assert balance(chart.CARD_FEES) == fees
    assert balance(chart.CARD) == clearing_before - paid[one.pk].amount == paid[three.pk].amount
    assert balance(chart.BANK) == posted.amount
    assert clearing_reconciliation() == [
        {"currency": "GBP", "clearing": paid[three.pk].amount, "awaiting": paid[three.pk].amount,
         "difference": Decimal("0.00")},
    ]  # fmt: skip
    assert selectors.trial_balance().balanced

    call_command("import_payouts", "--days", "3650", stdout=StringIO())  # again: nothing posted twice
    assert LedgerTransaction.objects.filter(kind="card_payout").count() == 1

    accountant = staff_member_set(username="acc", password="correct-horse-battery", carpark_codes=[world.carpark.code],
                                  role="accountant")  # fmt: skip
    operator = staff_member_set(username="op", password="correct-horse-battery", carpark_codes=[world.carpark.code],
                                role="operator")  # fmt: skip
    client = Client()
    client.force_login(operator)
    assert client.get("/dashboard/payments/payouts").status_code == 403
    client.force_login(accountant)
    page = client.get("/dashboard/payments/payouts").text
    assert 'data-payout="po_paid" data-matched="yes"' in page and 'data-payout="po_pending" data-matched="no"' in page
    assert one.reference in page and "reconciled" in page
