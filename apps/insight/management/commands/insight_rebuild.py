from datetime import date, datetime, time, timedelta

from django.core.management.base import BaseCommand, CommandError

from apps.carparks.models import CarPark
from apps.insight.revenue_summary import revenue_days_refresh
from apps.insight.summary import occupancy_hours_refresh


class Command(BaseCommand):
    help = (
        "Recompute the reports' summaries for a range of dates: hourly occupancy (from visits and bookings) and "
        "daily revenue (from the ledger)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--carpark", action="append", help="Car park code (repeatable; default: all)")
        parser.add_argument("--start", required=True, help="First local date, YYYY-MM-DD")
        parser.add_argument("--end", required=True, help="Last local date, YYYY-MM-DD")

    def handle(self, *args, carpark=None, start: str, end: str, **options):
        try:
            first, last = date.fromisoformat(start), date.fromisoformat(end)
        except ValueError:
            raise CommandError("--start and --end are dates: YYYY-MM-DD", returncode=2) from None
        if first > last:
            raise CommandError(f"--start {first} is after --end {last}", returncode=2)
        carparks = CarPark.objects.order_by("code")
        if carpark:
            carparks = carparks.filter(code__in=carpark)
        for cp in carparks:
            since = datetime.combine(first, time(), tzinfo=cp.tz)
            until = datetime.combine(last + timedelta(days=1), time(), tzinfo=cp.tz)
            n = occupancy_hours_refresh(carpark_id=cp.pk, start=since, end=until)
            days = revenue_days_refresh(carpark_ids=[cp.pk], start=first, end=last)
            self.stdout.write(f"{cp.code}: {n} hours and {days} revenue rows rebuilt")
