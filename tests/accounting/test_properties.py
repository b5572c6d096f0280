"""Property-based: random sequences of bookings, amendments and cancellations (through the real booking services),
payments, refunds (plain, and VAT-correct partial refunds through `refund_record`), cancellation fees, overstays,
VAT rate changes and invoice runs, against a simple model of what each booking should owe. After every step the
invariants must hold:

- the ledger balances (every transaction, and the trial balance per currency), VAT included;
- each booking's balance = its sale (price less allowances, 0 once cancelled) + overstay + cancellation fees
  - payments + refunds - what was invoiced to its agent (a customer's own booking: balance = sale - payments);
- VAT: every posting made since the last step splits each rate's gross into net and VAT with VAT = gross x r / (1 + r)
  rounded half up to the penny; an increase at the rate in force on its date (the model's), a decrease at a rate the
  position was charged at (the exact reversal of what was held at that rate when it reverses it in full); a
  cancelled booking without a fee holds no output or input VAT; the quarter's VAT summary equals the VAT accounts;
- every invoice's totals equal the sum of its lines; invoice numbers have no gaps;
- what agents owe (1200) = their invoices' totals; commission not yet invoiced (2100) = accrued - invoiced.
"""

import itertools
import os
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from apps.accounting import chart, selectors, services, vat
from apps.accounting import invoices as invoicing
from apps.accounting.ledger import PostingError
from apps.accounting.models import CarParkRates, Invoice, LedgerLine, LedgerTransaction, VatRate
from apps.agents.models import Agent
from apps.bookings import services as booking_services
from apps.carparks.models import CarPark

D = Decimal
NIL = Decimal("0")  # immutable: safe as a dataclass default
RATE = D("0.15")
prices = st.decimals(min_value=D("0.00"), max_value=D("500.00"), places=2)
amounts = st.decimals(min_value=D("0.01"), max_value=D("300.00"), places=2)
index = st.integers(min_value=0, max_value=30)
_plates = itertools.count(1)

booking_steps = st.tuples(st.just("book"), st.booleans(), prices, st.none() | st.decimals(D("0"), D("50"), places=2))
steps = st.one_of(
    booking_steps,
    st.tuples(st.just("amend"), index, prices),
    st.tuples(st.just("cancel"), index),
    # None: pay the whole balance (so that refunds beyond what is owed back, allowances, come up often)
    st.tuples(st.just("pay"), index, st.none() | amounts, st.sampled_from(["cash", "card", "bank_transfer"])),
    st.tuples(st.just("refund"), index, amounts),
    st.tuples(st.just("overstay"), index, st.integers(min_value=0, max_value=30)),
    st.tuples(st.just("invoice")),
    st.tuples(st.just("refund_record"), index, amounts),
    st.tuples(st.just("fee"), index, st.decimals(D("-20.00"), D("40.00"), places=2).filter(bool)),
    st.tuples(st.just("rate"), st.sampled_from([D("0.2000"), D("0.1750"), D("0.0500"), D("0.0000")])),
)
SALE_SIDE = {chart.PARKING_REVENUE, chart.OVERSTAY_REVENUE, chart.OUTPUT_VAT}
COMMISSION_SIDE = {chart.COMMISSION_EXPENSE, chart.INPUT_VAT}


@dataclass
class Expected:
    """What one booking should owe, kept by the test independently of the ledger."""

    booking: object
    price: Decimal
    stated_commission: Decimal | None
    agent: bool
    cancelled: bool = False
    paid: Decimal = NIL
    overstay: Decimal = NIL
    allowed: Decimal = NIL
    fees: Decimal = NIL
    invoiced_price: Decimal = NIL
    invoiced_commission: Decimal = NIL

    @property
    def sold(self) -> Decimal:
        return D("0") if self.cancelled else max(self.price - self.allowed, D("0"))

    @property
    def commission(self) -> Decimal:
        if self.cancelled or not self.agent:
            return D("0")
        if self.stated_commission is not None:
            return self.stated_commission
        return (self.price * RATE).quantize(D("0.01"), rounding=ROUND_HALF_UP)

    @property
    def balance(self) -> Decimal:
        return self.sold + self.fees + self.overstay - self.paid - self.invoiced_price


class LedgerProperties(TestCase):
    @settings(
        # PARKGATE_PROPERTY_EXAMPLES=500 for a longer hunt (the suite's budget keeps the default small)
        max_examples=int(os.environ.get("PARKGATE_PROPERTY_EXAMPLES", "30")),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(booking_steps, min_size=1, max_size=3), st.lists(steps, min_size=3, max_size=25))
    def test_invariants_hold_after_every_step(self, opening, sequence):
        carpark = CarPark.objects.create(code="PROP", name="Property", capacity=1000, currency="GBP", grace_min=60)
        CarParkRates.objects.create(carpark=carpark, overstay_rate=D("4.00"), overstay_unit="hour")
        # Any commission up to the price is within this agent's terms (apps.bookings.terms): the ledger is under test.
        agent = Agent.objects.create(code="prop", name="Prop", commission_rate=RATE, commission_tolerance=D("1"))
        agent.carparks.add(carpark)
        bookings: list[Expected] = []
        month = timezone.localdate().replace(day=1)
        self.rate = vat.rate_on(carpark_id=carpark.pk, day=timezone.localdate())
        self.charged: dict[tuple[int, str], set[Decimal]] = {}  # (booking, side) -> rates charged
        self.seen = 0  # last ledger transaction checked for VAT
        for step in opening + sequence:  # some bookings first, so that most steps have one to act on
            self.apply(step, bookings, carpark, agent, month)
            self.check(bookings, agent)
            self.check_vat(bookings)
        self.check_summary()

    def apply(self, step, bookings, carpark, agent, month) -> None:
        kind, *args = step
        if kind == "rate":  # a change of rate from today: increases from now on use it, reductions the old ones
            VatRate.objects.update_or_create(
                carpark=carpark, valid_from=timezone.localdate(timezone=carpark.tz), defaults={"rate": args[0]}
            )
            self.rate = args[0]
            return
        if kind == "book":
            by_agent, price, commission = args
            commission = None if commission is None else min(commission, price)  # never more than the price
            n = next(_plates)
            arrival = timezone.now() + timedelta(days=2)
            booking = booking_services.booking_create(
                carpark=carpark,
                arrival=arrival,
                departure=arrival + timedelta(days=3),
                customer_name=f"Customer {n}",
                vehicles=[{"registration": f"HP{n:05d}"}],
                source="api" if by_agent else "staff",
                price=price,
                agent=agent if by_agent else None,
                agent_ref=f"H-{n}" if by_agent else None,
                commission=commission if by_agent else None,
            )
            bookings.append(Expected(booking, price, commission if by_agent else None, by_agent))
            return
        if kind == "invoice":
            invoicing.agent_invoices_generate(agent_id=agent.pk, month=month)
            for exp in bookings:
                if exp.agent:
                    # a cancellation fee on an agent's booking is the agent's to pay, like the price
                    exp.invoiced_price, exp.invoiced_commission = exp.sold + exp.fees, exp.commission
            return
        if not bookings:
            return
        exp = bookings[args[0] % len(bookings)]
        if kind == "amend":
            if exp.cancelled:
                with self.assertRaises(booking_services.BookingInvalid):
                    booking_services.booking_amend(booking=exp.booking, price=args[1])
                return
            exp.booking = booking_services.booking_amend(booking=exp.booking, price=args[1])
            if args[1] != exp.price:
                exp.stated_commission = None  # a new price re-computes the agent's commission at its rate
            exp.price = args[1]
        elif kind == "cancel":
            exp.booking = booking_services.booking_cancel(booking=exp.booking)
            exp.cancelled = True
        elif kind == "pay":
            amount, method = args[1], args[2]
            if amount is None:
                if exp.balance <= 0:
                    return
                amount = exp.balance
            if amount > exp.balance:
                with self.assertRaises(services.PaymentInvalid):
                    services.payment_record(booking_id=exp.booking.pk, amount=amount, method=method)
            else:
                services.payment_record(booking_id=exp.booking.pk, amount=amount, method=method)
                exp.paid += amount
        elif kind == "refund":
            amount = args[1]
            if amount > -exp.balance:
                with self.assertRaises(services.PaymentInvalid):
                    services.payment_record(booking_id=exp.booking.pk, amount=amount, method="card", kind="refund")
            else:
                services.payment_record(booking_id=exp.booking.pk, amount=amount, method="card", kind="refund")
                exp.paid -= amount
        elif kind == "refund_record":  # a staff or provider refund: beyond what is owed back, an allowance
            amount = args[1]
            beyond = amount - max(-exp.balance, D("0"))
            ok = beyond <= 0 or (not exp.cancelled and beyond <= exp.sold and exp.balance <= 0)
            refund = {"booking_id": exp.booking.pk, "amount": amount, "method": "card", "reason": "goodwill"}
            if not ok:
                with self.assertRaises(PostingError):
                    services.refund_record(**refund)
                return
            services.refund_record(**refund)
            event("refund_record beyond what is owed back (allowance)" if beyond > 0 else "refund_record owed back")
            exp.allowed += max(beyond, D("0"))
            exp.paid -= amount
        elif kind == "fee":
            amount = args[1]
            if not exp.cancelled or exp.fees + amount < 0:
                with self.assertRaises(services.SaleInvalid):
                    services.cancellation_fee_post(booking_id=exp.booking.pk, amount=amount)
                return
            services.cancellation_fee_post(booking_id=exp.booking.pk, amount=amount)
            event("cancellation fee")
            exp.fees += amount
        elif kind == "overstay":
            exited = exp.booking.departure + timedelta(minutes=60 + args[1] * 20)
            charge = services.overstay_charge_post(booking_id=exp.booking.pk, exited_at=exited)
            expected = D(4) * -(-args[1] * 20 // 60)  # per started hour after the 60 min grace
            assert (charge.amount if charge else D("0")) == expected
            exp.overstay += expected

    def check(self, bookings: list[Expected], agent) -> None:
        unbalanced = (
            LedgerLine.objects.values("transaction_id").annotate(s=Sum("amount")).exclude(s=0).values("transaction_id")
        )
        assert not unbalanced.exists()
        assert selectors.trial_balance().balanced
        for exp in bookings:
            assert selectors.booking_balance(exp.booking.pk) == exp.balance, exp
        for invoice in Invoice.objects.all():
            sums = invoice.lines.aggregate(p=Sum("price"), c=Sum("commission"), a=Sum("amount"))
            assert (invoice.gross_total, invoice.commission_total, invoice.total) == (sums["p"], sums["c"], sums["a"])
            assert invoice.total == invoice.gross_total - invoice.commission_total
        for series in ("INV", "CN"):
            seqs = list(Invoice.objects.filter(series=series).order_by("sequence").values_list("sequence", flat=True))
            assert seqs == list(range(1, len(seqs) + 1))
        owed = LedgerLine.objects.filter(agent=agent, account__code=chart.AGENT_RECEIVABLES).aggregate(s=Sum("amount"))
        invoiced = Invoice.objects.filter(agent=agent).aggregate(s=Sum("total"))
        assert (owed["s"] or 0) == (invoiced["s"] or 0)
        payable = LedgerLine.objects.filter(agent=agent, account__code=chart.COMMISSION_PAYABLE).aggregate(
            s=Sum("amount")
        )
        not_invoiced = sum((exp.commission - exp.invoiced_commission for exp in bookings), D("0"))
        assert -(payable["s"] or 0) == not_invoiced

    def check_summary(self) -> None:
        """The VAT return's figures are the VAT accounts' (once per sequence: it reads the whole ledger)."""
        everything = {"start": date(2000, 1, 1), "end": timezone.localdate() + timedelta(days=400)}
        for row in vat.vat_summary(**everything)["currencies"]:
            vat_lines = LedgerLine.objects.filter(transaction__currency=row["currency"])
            output = vat_lines.filter(account__code=chart.OUTPUT_VAT).aggregate(s=Sum("amount"))["s"] or 0
            reclaim = vat_lines.filter(account__code=chart.INPUT_VAT).aggregate(s=Sum("amount"))["s"] or 0
            assert (row["output_vat"], row["input_vat"]) == (-output, reclaim)
            assert row["net_due"] == row["output_vat"] - row["input_vat"]

    def check_vat(self, bookings: list[Expected]) -> None:
        """Every VAT-split posting since the last step, per booking, side (sale or commission) and rate."""
        new = LedgerLine.objects.filter(transaction_id__gt=self.seen, vat_rate__isnull=False).select_related(
            "account", "transaction"
        )
        parts: dict[tuple[int, int, str, Decimal], list[Decimal]] = {}
        for line in new:
            side = "sale" if line.account.code in SALE_SIDE else "commission"
            if line.account.code not in SALE_SIDE | COMMISSION_SIDE:
                continue  # 2100: the commission's gross, = net + VAT by the transaction's balance
            part = parts.setdefault((line.transaction_id, line.booking_id, side, line.vat_rate), [D("0"), D("0")])
            sign = -1 if side == "sale" else 1
            part[1 if line.account.code in (chart.OUTPUT_VAT, chart.INPUT_VAT) else 0] += sign * line.amount
        for (txn_id, booking_id, side, rate), (net, tax) in sorted(parts.items()):
            gross = net + tax
            rule = tax == vat.vat_in(gross, rate)
            if gross > 0:  # a supply: at the rate in force on its date
                assert rule and rate == self.rate, (txn_id, side, rate, net, tax, self.rate)
                self.charged.setdefault((booking_id, side), set()).add(rate)
            elif gross < 0:  # a reduction: at a rate charged, split by the rule or reversing the position in full
                assert rate in self.charged.get((booking_id, side), set()), (txn_id, side, rate)
                accounts = SALE_SIDE - {chart.OVERSTAY_REVENUE} if side == "sale" else COMMISSION_SIDE
                left = (
                    LedgerLine.objects.filter(booking_id=booking_id, vat_rate=rate, account__code__in=accounts)
                    .exclude(transaction__kind=LedgerTransaction.Kind.OVERSTAY)
                    .values("account__code")
                    .annotate(s=Sum("amount"))
                    .exclude(s=0)
                )
                assert rule or not left.exists(), (txn_id, side, rate, net, tax, list(left))
        self.seen = LedgerTransaction.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        done = [exp.booking.pk for exp in bookings if exp.cancelled and not exp.fees]
        left = (
            LedgerLine.objects.filter(booking_id__in=done, account__code__in=[chart.OUTPUT_VAT, chart.INPUT_VAT])
            .exclude(transaction__kind=LedgerTransaction.Kind.OVERSTAY)
            .values("booking_id")
            .annotate(s=Sum("amount"))
            .exclude(s=0)
        )
        assert not left.exists(), list(left)  # a cancelled booking without a fee holds no VAT
