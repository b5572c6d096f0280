"""Insight at the service level on one seeded history (rolled back at the end): the seeding's contract, the
ledger behind the revenue report, the hourly summary against a rebuild, the planted no-show pattern learned by
the forecast, and accepting an overbooking allowance."""

import io
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from apps.accounting.selectors import trial_balance
from apps.bookings.models import Booking, CapacityDay
from apps.carparks.models import CarPark
from apps.core.models import AuditLog
from apps.insight import forecast, overbooking
from apps.insight.history import PROFILES, history_seed, with_no_shows
from apps.insight.models import OccupancyHour, OverbookingAllowance
from apps.insight.reports import Params, agents_report, arrivals_report, revenue_report
from apps.insight.reports.revenue import revenue_rows
from apps.insight.revenue_summary import revenue_days_refresh
from apps.insight.summary import floor_hour, occupancy_compute, occupancy_hours, occupancy_hours_refresh
from project.demo import seed_demo

pytestmark = pytest.mark.django_db

PLANTED = 0.20
#: The learned no-show share must be within this of the planted one (about 3.5 standard errors at ~1,000 stays).
TOLERANCE = 0.04


@pytest.fixture(scope="module")
def history(django_db_setup, django_db_blocker):
    """Seeded once for the module inside a transaction rolled back at its end (each test nests a savepoint)."""
    with django_db_blocker.unblock(), transaction.atomic():
        seed_demo()
        planted = replace(with_no_shows(PROFILES["holidayx"], PLANTED), share=0.5)  # plenty of its stays
        counts = history_seed(days=120, carpark_codes=["MAN-T2"], profiles={"holidayx": planted})
        with connection.cursor() as cursor:  # the ledger's deferred balance checks, once, not at every test's end
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        yield CarPark.objects.get(code="MAN-T2"), counts
        transaction.set_rollback(True)


def test_seeding_is_plausible_consistent_and_idempotent(history):
    carpark, counts = history
    assert counts["days"] == 150 and counts["bookings"] > 2000, counts
    assert history_seed(days=120, carpark_codes=["MAN-T2"]) == {}  # the same DAYS again adds nothing
    statuses = dict(Booking.objects.filter(carpark=carpark).values_list("status").annotate(n=Count("id")))
    assert {"departed", "cancelled", "no_show", "confirmed"} <= set(statuses), statuses
    channels = set(Booking.objects.filter(carpark=carpark).values_list("source", flat=True))
    assert channels == {"web", "staff", "api", "email"}
    early = Booking.objects.filter(carpark=carpark, visits__entered_at__lt=timezone.now()).count()
    assert early > 1000
    # the ledger balances and holds exactly the live bookings' prices as parking revenue
    assert trial_balance().balanced
    revenue = -sum(r.balance for r in trial_balance().rows if r.code in ("4000", "2200"))  # net + VAT
    live = Booking.objects.filter(carpark=carpark).exclude(status="cancelled")
    assert revenue == sum(b.price for b in live)
    # capacity held per day matches the live bookings touching it (spot check on a busy day)
    day = (timezone.now() + timedelta(days=3)).date()
    held = CapacityDay.objects.get(carpark=carpark, date=day).held
    assert held > 0
    # the command: the same DAYS again adds nothing
    out = io.StringIO()
    call_command("seed_demo", "--history", "1", stdout=out)
    assert "History of 1 days: added" in out.getvalue() and "nothing" not in out.getvalue()
    call_command("seed_demo", "--history", "1", stdout=out)
    assert "History of 1 days: added nothing (already seeded)." in out.getvalue()


def test_revenue_report_equals_the_ledger_and_other_reports_read_the_pattern(history):
    carpark, _ = history
    today = timezone.localdate()
    start, end = today - timedelta(days=60), today - timedelta(days=1)
    params = Params(carparks=(carpark,), start=start, end=end, group="month", by="channel")
    total = revenue_report(params).rows[-1]
    assert total[0] == "Total"

    def income(until):
        return -sum(r.balance for r in trial_balance(until=until).rows if r.code in ("4000", "4100"))

    assert total[3] == income(end) - income(start - timedelta(days=1))  # net
    # the daily summary it read (filled just now) equals the ledger summed directly, and after a rebuild
    day_by_day = replace(params, group="day")
    assert revenue_rows(day_by_day) == revenue_rows(day_by_day, summary=False)
    assert revenue_days_refresh(carpark_ids=[carpark.pk], start=start, end=end) > 60
    assert revenue_rows(day_by_day) == revenue_rows(day_by_day, summary=False)
    assert total[3] > Decimal("1000")
    assert total[7] > 0  # refunds happen in the history

    arrivals = {row[0].split(" / ")[0]: row for row in arrivals_report(params).rows}  # "channel / product"
    assert abs(arrivals["holidayx"][6] - 100 * PLANTED) <= 100 * TOLERANCE * 1.5, arrivals["holidayx"]
    assert arrivals["web"][6] < 8
    agents = agents_report(params).rows
    assert {r[1] for r in agents} == {"holidayx", "skypark", "legacy80"}
    assert sum(r[4] for r in agents) > 5  # price amendments, from the ledger


def test_hourly_summary_equals_a_rebuild_from_visits_and_bookings(history):
    carpark, _ = history
    end = floor_hour(timezone.now())
    start = end - timedelta(days=10)
    stored = occupancy_hours(carpark=carpark, start=start, end=end)  # fills the summary
    assert OccupancyHour.objects.filter(carpark=carpark).count() == 240
    # a visit closed late (as a late exit read would) changes history; the refresh brings the summary back in line
    visit = carpark.visits.filter(exited_at__gt=start + timedelta(days=2)).order_by("exited_at").first()
    carpark.visits.filter(pk=visit.pk).update(exited_at=visit.exited_at + timedelta(hours=5))
    occupancy_hours_refresh(carpark_id=carpark.pk, start=start, end=end)
    stored = occupancy_hours(carpark=carpark, start=start, end=end)
    rebuilt = occupancy_compute(carpark_id=carpark.pk, start=start, end=end)
    for name in ("booked", "on_site", "entries", "exits"):
        assert stored[name].tolist() == rebuilt[name].tolist(), name
    assert max(stored["on_site"]) > 50
    # and one hour checked by hand against the rows themselves
    hour = start + timedelta(days=5, hours=7)
    by_hand = carpark.visits.filter(Q(entered_at__lte=hour), Q(exited_at__isnull=True) | Q(exited_at__gt=hour)).count()
    assert stored["on_site"][5 * 24 + 7] == by_hand


def test_forecast_learns_the_planted_no_shows_and_allowances_need_a_person(history, django_user_model):
    carpark, _ = history
    made = forecast.forecast_refresh(carpark_id=carpark.pk)
    assert made.has_history
    learned = made.learned["holidayx"]["no_show"]
    assert abs(learned - PLANTED) <= TOLERANCE, learned
    assert made.learned["web"]["no_show"] < 0.08
    assert len(made.hours) == 30 * 24
    assert set(made.backtest) == {"1", "3", "7", "14", "28"}
    assert all(row[2] <= row[1] <= row[3] for row in made.hours)
    # the planted agent shows less, so it may oversell no less than a reliable channel on any day
    recs = {(r["date"], r["channel"]): r for r in made.recommendations}
    assert all(recs[(d, "holidayx")]["show"] < recs[(d, "legacy80")]["show"] for d, _ in recs)
    assert not OverbookingAllowance.objects.exists()  # nothing oversells until someone accepts

    rec = next(r for r in made.recommendations if r["spaces"] > 0)
    boss = django_user_model.objects.create_user("boss")
    with pytest.raises(overbooking.AllowanceInvalid):
        overbooking.overbooking_allowance_accept(
            carpark_id=carpark.pk, day=timezone.localdate().fromisoformat(rec["date"]), channel=rec["channel"],
            spaces=rec["spaces"] + 1, forecast_id=made.pk, actor=boss,
        )  # fmt: skip
    allowance = overbooking.overbooking_allowance_accept(
        carpark_id=carpark.pk, day=timezone.localdate().fromisoformat(rec["date"]), channel=rec["channel"],
        spaces=rec["spaces"], forecast_id=made.pk, actor=boss,
    )  # fmt: skip
    assert overbooking.overbooking_allowances(carpark_id=carpark.pk, start=allowance.date, end=allowance.date) == {
        (allowance.date, rec["channel"]): rec["spaces"]
    }
    audit = AuditLog.objects.get(action="overbooking_allowance_accept")
    assert audit.actor == boss and audit.data["spaces"] == rec["spaces"]

    # a car park with no history: bookings only, said so, nothing recommended
    empty = forecast.forecast_refresh(carpark_id=CarPark.objects.get(code="LHR-T5").pk)
    assert not empty.has_history and empty.recommendations == [] and empty.backtest == {}
