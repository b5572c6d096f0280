"""Posting to the ledger: the only code that writes LedgerTransaction / LedgerLine rows.

Every posting is checked before it is written: amounts in whole cents, lines summing to zero, and the accounting
period open. Callers post inside their own `transaction.atomic` (a booking service's, a payment's...), so the
money side commits or rolls back with the event itself.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from apps.accounting import chart
from apps.accounting.models import Account, AccountingPeriod, LedgerLine, LedgerTransaction

CENT = Decimal("0.01")


class PostingError(ValueError):
    """A posting that must not be written (unbalanced, fractional cents...)."""


class Unbalanced(PostingError):
    pass


class PeriodClosed(PostingError):
    """The accounting month is closed: nothing may be posted into it."""

    def __init__(self, month: date):
        self.month = month
        super().__init__(
            f"The accounting period {month:%Y-%m} is closed: nothing can be posted into it. "
            f"Reopen it or post the correction in an open month."
        )


@dataclass(frozen=True)
class Line:
    account: str  # a code from apps.accounting.chart
    amount: Decimal  # debit > 0, credit < 0
    booking_id: int | None = None
    agent_id: int | None = None
    vat_rate: Decimal | None = None  # on the net and VAT lines of a VAT-split posting (apps.accounting.vat)


def month_start(day: date) -> date:
    return day.replace(day=1)


def local_date(tz, when: datetime | None = None) -> date:
    """The accounting date of an instant: its calendar date where the money was taken (the car park's zone)."""
    return timezone.localtime(when or timezone.now(), tz).date()


def account_ids() -> dict[str, int]:
    """Account id by code (a handful of rows; the chart is created here if a flushed test database lost it)."""
    ids = dict(Account.objects.values_list("code", "id"))
    if len(ids) < len(chart.CHART):
        chart.ensure()
        ids = dict(Account.objects.values_list("code", "id"))
    return ids


def period_assert_open(day: date) -> None:
    """Refuse posting into a closed month, holding the month's row so that a concurrent close waits for us.

    The row is created on first use and read FOR SHARE: `period_close` takes it FOR UPDATE, so a close and a
    posting into the same month are serialised and a posting can never commit into a month closed meanwhile.
    """
    month = month_start(day)
    table = AccountingPeriod._meta.db_table
    held = f"SELECT closed_at FROM {table} WHERE month = %s FOR SHARE"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(held, [month])
        row = cursor.fetchone()
        if row is None:  # the month's first posting (the row exists from then on: one statement per posting)
            cursor.execute(f"INSERT INTO {table} (month) VALUES (%s) ON CONFLICT (month) DO NOTHING", [month])  # noqa: S608
            cursor.execute(held, [month])
            row = cursor.fetchone()
    if row is not None and row[0] is not None:
        raise PeriodClosed(month)


def _check_amount(amount: Decimal) -> Decimal:
    if not isinstance(amount, Decimal):
        raise PostingError(f"amounts must be Decimal, got {type(amount).__name__}")
    if amount != amount.quantize(CENT):
        raise PostingError(f"amount {amount} has fractions of a cent")
    return amount


def transaction_post(
    *,
    day: date,
    kind: str,
    currency: str,
    lines: Iterable[Line],
    memo: str = "",
    carpark_id: int | None = None,
    booking_id: int | None = None,
    created_by=None,
) -> LedgerTransaction | None:
    """Write one balanced transaction. Zero lines are dropped; nothing to post -> None.

    Raises Unbalanced if the lines do not sum to zero, PeriodClosed if `day`'s month is closed.
    """
    lines = [line for line in lines if _check_amount(line.amount) != 0]
    if not lines:
        return None
    total = sum((line.amount for line in lines), Decimal("0"))
    if total != 0:
        raise Unbalanced(f"transaction does not balance: debits - credits = {total} ({kind} {memo})")
    # No savepoint of its own: nothing between here and the caller's atomic catches an error of this posting, so
    # rolling back to the caller's savepoint is the same (and a booking made by email pays two round trips less).
    with transaction.atomic(savepoint=False):
        period_assert_open(day)
        ids = account_ids()
        txn = LedgerTransaction.objects.create(
            date=day,
            kind=kind,
            currency=currency,
            memo=memo[:200],
            carpark_id=carpark_id,
            booking_id=booking_id,
            created_by=created_by,
        )
        LedgerLine.objects.bulk_create(
            LedgerLine(
                transaction=txn,
                account_id=ids[line.account],
                amount=line.amount,
                booking_id=line.booking_id,
                agent_id=line.agent_id,
                vat_rate=line.vat_rate,
            )
            for line in lines
        )
    return txn


class StreamedPosting:
    """A transaction too large to hold in memory (an invoice of 50,000 bookings): lines are appended in batches.

    Use inside `transaction.atomic()`: `open()`, `add()` lines as they stream, then `close()`, which checks the
    balance in the database (and raises Unbalanced, rolling everything back) before the caller commits.
    """

    def __init__(self, *, day: date, kind: str, currency: str, memo: str = "", batch_size: int = 2000):
        self.day, self.kind, self.currency, self.memo, self.batch_size = day, kind, currency, memo, batch_size
        self.txn: LedgerTransaction | None = None
        self._pending: list[LedgerLine] = []
        self._ids: dict[str, int] = {}
        self.total = Decimal("0")

    def open(self) -> LedgerTransaction:
        period_assert_open(self.day)
        self._ids = account_ids()
        self.txn = LedgerTransaction.objects.create(
            date=self.day, kind=self.kind, currency=self.currency, memo=self.memo[:200]
        )
        return self.txn

    def add(self, line: Line) -> None:
        if _check_amount(line.amount) == 0:
            return
        self.total += line.amount
        self._pending.append(
            LedgerLine(
                transaction=self.txn,
                account_id=self._ids[line.account],
                amount=line.amount,
                booking_id=line.booking_id,
                agent_id=line.agent_id,
                vat_rate=line.vat_rate,
            )
        )
        if len(self._pending) >= self.batch_size:
            self._flush()

    def _flush(self) -> None:
        LedgerLine.objects.bulk_create(self._pending)
        self._pending = []

    def close(self) -> LedgerTransaction:
        self._flush()
        stored = LedgerLine.objects.filter(transaction=self.txn).aggregate(s=Sum("amount"))["s"] or Decimal("0")
        if self.total != 0 or stored != 0:
            raise Unbalanced(f"streamed transaction {self.txn.pk} does not balance: {stored}")
        return self.txn
