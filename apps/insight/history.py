"""Plausible history for the demo and the tests: `seed_demo --history DAYS` (docs/insight.md).

For every car park and every arrival date from DAYS ago to 30 days ahead not seeded yet (HistoryDay), bookings from
each channel with its own lead times, cancellations, no-shows and arrival/departure habits (`PROFILES`); for the
past ones the visits and plate reads their cars left, and a few turned-away unknown vehicles per lane; and their
money in the ledger exactly as the booking services post it (apps/accounting/chart.py): sold on the day booked,
reversed on the day cancelled, paid on arrival by card for the website's and staff's bookings, the odd refund.

Fast because it is bulk: rows are built in memory and written with `bulk_create` in a few statements per table
(the ledger's deferred balance trigger still checks every transaction at commit). Each date draws from its own
seeded random stream, so the same DAYS on the same day gives the same history, and nothing twice.
"""

import json
import math
import random
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection, transaction
from django.utils import timezone

from apps.access.models import Device, PlateRead, Visit
from apps.agents.models import Agent
from apps.bookings.models import Booking, CapacityDay, Customer, Vehicle
from apps.bookings.pricing import TariffRule, price_stay, stay_dates
from apps.carparks.models import CarPark, Tariff
from apps.core import plates
from apps.insight.bulk import copy_rows, ids_reserve, next_id
from apps.insight.history_ledger import history_ledger_post
from apps.insight.models import HistoryDay
from apps.products.models import Fare, Product

AHEAD_DAYS = 30  # bookings already on the books for the coming month (the forecast's input)
BATCH = 5000


@dataclass(frozen=True)
class Profile:
    """How one channel's customers behave (shares of bookings; times in minutes, relative to the booked times)."""

    share: float
    lead_days: float  # mean days between booking and arrival (exponential)
    cancel: float
    no_show: float
    arrive_mean: float = -20.0
    arrive_sd: float = 40.0
    depart_mean: float = 30.0
    depart_sd: float = 60.0
    overstay: float = 0.03  # share of cars leaving hours after their departure (past the grace period)


PROFILES: dict[str, Profile] = {
    "web": Profile(share=0.42, lead_days=12, cancel=0.08, no_show=0.03),
    "staff": Profile(share=0.03, lead_days=0.5, cancel=0.02, no_show=0.01, arrive_mean=0, arrive_sd=10),
    "skypark": Profile(share=0.25, lead_days=20, cancel=0.12, no_show=0.05, arrive_mean=-35, arrive_sd=50),
    "holidayx": Profile(share=0.18, lead_days=30, cancel=0.10, no_show=0.08, depart_mean=60, depart_sd=90),
    "legacy80": Profile(share=0.12, lead_days=25, cancel=0.06, no_show=0.04),
}
OCCUPANCY_TARGET = 0.8  # of capacity, on an average day
MEAN_STAY_DAYS = 4.0
UNKNOWN_READS_PER_LANE_DAY = 3
AMENDED = 0.06  # share of bookings whose price an amendment changed before arrival


def history_seed(
    *, days: int, now: datetime | None = None, carpark_codes: list[str] | None = None, profiles=None, scale=1.0
) -> dict[str, int]:
    """Add `days` of history (and the next 30 days' bookings) to every car park; returns counts of rows added.

    `profiles` overrides the channels' behaviour (a test plants an agent with 20% no-shows); `scale` the volume.
    """
    now = now or timezone.now()
    profiles = {**PROFILES, **(profiles or {})}
    carparks = CarPark.objects.all().order_by("code")
    if carpark_codes:
        carparks = carparks.filter(code__in=carpark_codes)
    counts: dict[str, int] = {}
    with transaction.atomic():
        for carpark in carparks:
            for key, value in _seed_carpark(carpark, days=days, now=now, profiles=profiles, scale=scale).items():
                counts[key] = counts.get(key, 0) + value
    return counts


@dataclass
class _Plan:
    """One booking to be written, and what became of it."""

    booking: Booking
    vehicle: Vehicle
    created: datetime
    cancelled_at: datetime | None
    entered: datetime | None
    exited: datetime | None
    refund: Decimal
    amended_at: datetime | None = None  # the price was changed then (the stay lengthened): a posting of its own


def _seed_carpark(carpark: CarPark, *, days: int, now: datetime, profiles, scale) -> dict[str, int]:
    tz = carpark.tz
    today = timezone.localtime(now, tz).date()
    wanted = [today + timedelta(days=i) for i in range(-days, AHEAD_DAYS)]
    done = set(HistoryDay.objects.filter(carpark=carpark, date__in=wanted).values_list("date", flat=True))
    todo = [d for d in wanted if d not in done]
    if not todo:
        return {}
    agents = {a.code: a for a in Agent.objects.filter(code__in=profiles.keys())}
    channels = [(c, p) for c, p in profiles.items() if c in ("web", "staff") or c in agents]
    total_share = sum(p.share for _, p in channels)
    rules = _tariff_rules(carpark)
    arrivals_per_day = carpark.capacity * OCCUPANCY_TARGET / MEAN_STAY_DAYS * scale
    plans: list[_Plan] = []
    for day in todo:
        rng = random.Random(f"{carpark.code}:{day.isoformat()}")
        weekday_factor = (0.85, 0.9, 0.95, 1.05, 1.2, 1.15, 0.9)[day.weekday()]
        season = 1 + 0.2 * math.sin(2 * math.pi * (day.timetuple().tm_yday - 100) / 365)
        for _ in range(_poisson(rng, arrivals_per_day * weekday_factor * season)):
            channel, profile = _pick(rng, channels, total_share)
            plan = _plan(rng, carpark, day, channel, profile, agents.get(channel), rules, now)
            if plan is not None:
                plans.append(plan)
    # Sold as the car park's default product and its first fare (what a booking naming none is).
    product_id = Product.objects.filter(carpark=carpark, is_default=True).values_list("pk", flat=True).first()
    fare_id = Fare.objects.filter(product_id=product_id).order_by("position", "code").values_list("pk", flat=True)[:1]
    for plan in plans:
        plan.booking.product_id, plan.booking.fare_id = product_id, next(iter(fare_id), None)
    counts = _write(carpark, plans, now)
    HistoryDay.objects.bulk_create([HistoryDay(carpark=carpark, date=d) for d in todo], ignore_conflicts=True)
    counts["days"] = len(todo)
    return counts


def _tariff_rules(carpark: CarPark) -> dict[int | None, TariffRule]:
    rules = {}
    for tariff in Tariff.objects.filter(carpark=carpark).prefetch_related("bands"):
        bands = tuple((b.from_day, b.daily_rate) for b in tariff.bands.all())
        rules[tariff.brand_id] = TariffRule(tariff.daily_rate, tariff.minimum_charge, bands)
    return rules or {None: TariffRule(Decimal("10.00"))}


def _poisson(rng: random.Random, mean: float) -> int:
    # A normal approximation is plenty for daily counts in the tens.
    return max(0, round(rng.gauss(mean, math.sqrt(max(mean, 1)))))


def _pick(rng: random.Random, channels, total: float):
    x = rng.random() * total
    for channel, profile in channels:
        x -= profile.share
        if x <= 0:
            return channel, profile
    return channels[-1]


def _arrival_minute(rng: random.Random) -> int:
    # Early-morning flights dominate airport parking; an afternoon wave; little at night.
    hour = rng.choices(range(24), weights=[1, 1, 2, 4, 8, 10, 10, 8, 6, 5, 5, 5, 6, 6, 6, 6, 5, 4, 3, 3, 2, 2, 1, 1])
    return hour[0] * 60 + rng.randrange(0, 60, 5)


def _plan(rng, carpark, day, channel, profile, agent, rules, now) -> _Plan | None:
    tz = carpark.tz
    arrival = datetime.combine(day, time(), tzinfo=tz) + timedelta(minutes=_arrival_minute(rng))
    stay_days = min(21, 1 + int(rng.expovariate(1 / (MEAN_STAY_DAYS - 1))))
    departure = arrival + timedelta(days=stay_days, minutes=rng.randrange(-240, 240, 15))
    lead = timedelta(hours=rng.expovariate(1 / max(profile.lead_days * 24, 1)))
    created = arrival - lead
    if created >= now:
        return None  # not booked yet
    cancelled_at = None
    if rng.random() < profile.cancel:
        cancelled_at = created + (arrival - created) * rng.random()
        if cancelled_at >= now:
            cancelled_at = None
    brand_id = None if agent else rng.choice([b for b in rules if b is not None] or [None])
    price = price_stay(rules.get(brand_id) or rules[None], arrival=arrival, departure=departure, tz=tz)
    commission = (price * agent.commission_rate).quantize(Decimal("0.01"), ROUND_HALF_UP) if agent else None
    plate = f"{rng.choice('ABCDEFGHJKLMNOPRSTUVWXY')}{rng.choice('ABCDEFGHJKLMNOPRSTUVWXY')}"
    plate += f"{rng.randrange(10, 75)}{''.join(rng.choices('ABCDEFGHJKLMNOPRSTUVWXYZ', k=3))}"
    source = {"web": "web", "staff": "staff"}.get(channel) or ("email" if agent.email_format != "labels" else "api")
    booking = Booking(
        carpark_id=carpark.pk,
        brand_id=brand_id if not agent else None,
        agent=agent,
        arrival=arrival,
        departure=departure,
        source=source,
        price=price,
        currency=carpark.currency,
        commission=commission,
        created_at=created,
    )
    vehicle = Vehicle(registration_raw=plate, registration=plate, lookalike_key=plates.lookalike_key(plate))
    entered = exited = None
    refund = Decimal("0")
    if cancelled_at is None and arrival < now and rng.random() >= profile.no_show:
        entered = arrival + timedelta(minutes=rng.gauss(profile.arrive_mean, profile.arrive_sd))
        late = rng.gauss(profile.depart_mean, profile.depart_sd)
        if rng.random() < profile.overstay:
            late += carpark.grace_min + rng.uniform(60, 600)
        exited = max(entered + timedelta(minutes=30), departure + timedelta(minutes=late))
        if entered >= now:
            entered = exited = None  # due within the hour: not here yet
        elif exited >= now:
            exited = None
        if exited and not agent and rng.random() < 0.02:
            refund = (price * Decimal("0.2")).quantize(Decimal("0.01"))
    amended_at = created + (arrival - created) * rng.random() if rng.random() < AMENDED else None
    if amended_at and (amended_at >= now or (cancelled_at and amended_at >= cancelled_at)):
        amended_at = None
    return _Plan(booking, vehicle, created, cancelled_at, entered, exited, refund, amended_at)


def _status(plan: _Plan, now: datetime) -> str:
    if plan.cancelled_at:
        return Booking.Status.CANCELLED
    if plan.exited:
        return Booking.Status.DEPARTED
    if plan.entered:
        return Booking.Status.ARRIVED
    if plan.booking.arrival < now - timedelta(hours=12):
        return Booking.Status.NO_SHOW
    return Booking.Status.CONFIRMED


def _write(carpark: CarPark, plans: list[_Plan], now: datetime) -> dict[str, int]:
    if not plans:
        return {}
    first_id = next_id(Booking, len(plans))
    customers = Customer.objects.bulk_create(
        [Customer(name=f"History customer {first_id + i}") for i in range(len(plans))], batch_size=BATCH
    )
    for i, (plan, customer) in enumerate(zip(plans, customers, strict=True)):
        b = plan.booking
        b.customer = customer
        b.reference = f"PG-H{first_id + i:010d}"
        b.agent_ref = f"H{first_id + i}" if b.agent_id else None
        b.status = _status(plan, now)
    Booking.objects.bulk_create([p.booking for p in plans], batch_size=BATCH)
    # auto_now(_add) overwrote the times on the way in: put the history's back in one statement.
    _restore_times(plans)
    for plan in plans:
        plan.vehicle.booking = plan.booking
    Vehicle.objects.bulk_create([p.vehicle for p in plans], batch_size=BATCH)
    reads, visits = _visits(carpark, plans, now)
    _hold_capacity(carpark, plans)
    postings = history_ledger_post(carpark, plans)
    return {"bookings": len(plans), "reads": reads, "visits": visits, "ledger_transactions": postings}


def _restore_times(plans: list[_Plan]) -> None:
    table = Booking._meta.db_table
    ids = [p.booking.pk for p in plans]
    created = [p.created for p in plans]
    updated = [p.cancelled_at or p.exited or p.entered or p.created for p in plans]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} b SET created_at = v.c, updated_at = v.u "  # noqa: S608 (the model's table)
            "FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[]) AS v(id, c, u) WHERE b.id = v.id",
            [ids, created, updated],
        )


def _device(carpark: CarPark) -> Device:
    device, _ = Device.objects.get_or_create(
        carpark=carpark, name="Seeded history (no controller)", defaults={"serial": "history"}
    )
    return device


READ_FIELDS = ["id", "device", "lane", "carpark", "read_id", "plate_raw", "plate", "lookalike_key", "score",
               "candidates", "region", "vehicle", "retransmit", "local_action", "captured_at", "received_at",
               "action", "reason", "match", "booking", "decision", "unpaired_exit"]  # fmt: skip
VISIT_FIELDS = ["carpark", "plate", "lookalike_key", "entry_read", "exit_read", "entry_lane", "exit_lane",
                "entered_at", "exited_at", "booking", "closed_reason", "overstay_minutes"]  # fmt: skip


def _visits(carpark: CarPark, plans: list[_Plan], now: datetime) -> tuple[int, int]:
    lanes = list(carpark.lanes.all())
    entries = [lane for lane in lanes if lane.direction == "entry"]
    exits = [lane for lane in lanes if lane.direction == "exit"]
    if not entries or not exits:
        return 0, 0
    device = _device(carpark)
    device.lanes.add(*lanes)
    rng = random.Random(f"{carpark.code}:visits:{len(plans)}")
    days = sorted({timezone.localtime(p.booking.arrival, carpark.tz).date() for p in plans})
    unknown = [
        (lane, datetime.combine(day, time(), tzinfo=carpark.tz) + timedelta(minutes=rng.randrange(1440)))
        for day in days
        for lane in entries
        for _ in range(rng.randrange(UNKNOWN_READS_PER_LANE_DAY * 2 + 1))
    ]
    unknown = [(lane, at) for lane, at in unknown if at < now]
    visited = [p for p in plans if p.entered is not None]
    ids = iter(ids_reserve(PlateRead, sum(2 if p.exited else 1 for p in visited) + len(unknown)))
    reads, visits = [], []
    for plan in visited:
        b, plate = plan.booking, plan.vehicle.registration
        entry_lane, exit_lane = rng.choice(entries), rng.choice(exits)
        entry_id = next(ids)
        reads.append(_read(entry_id, device, entry_lane, plate, plan.entered, "open", "booking", b.pk))
        exit_id = minutes = None
        if plan.exited:
            past = (plan.exited - b.departure).total_seconds() / 60 - carpark.grace_min
            minutes = int(past) if past > 0 else None
            exit_id = next(ids)
            reason = "overstay" if minutes else "departure"
            reads.append(_read(exit_id, device, exit_lane, plate, plan.exited, "open", reason, b.pk))
        visits.append(
            (carpark.pk, plate, plan.vehicle.lookalike_key, entry_id, exit_id, entry_lane.pk,
             exit_lane.pk if exit_id else None, plan.entered, plan.exited, b.pk, "", minutes)
        )  # fmt: skip
    for lane, at in unknown:  # vehicles with no booking turned away at the entry lanes
        plate = f"ZZ{rng.randrange(10, 99)}{''.join(rng.choices('ABCDEFGHJKLMNPRSTUVWXYZ', k=3))}"
        reads.append(_read(next(ids), device, lane, plate, at, "deny", "unknown_vehicle", None))
    copy_rows(PlateRead, READ_FIELDS, reads)
    copy_rows(Visit, VISIT_FIELDS, visits)
    return len(reads), len(visits)


def _read(pk, device, lane, plate, at, action, reason, booking_id) -> tuple:
    decision = json.dumps({"type": "decision", "action": action, "reason": reason})
    return (pk, device.pk, lane.pk, lane.carpark_id, f"h-{pk}", plate, plate, plates.lookalike_key(plate), 0.95,
            "[]", "", "{}", False, "", at, at, action, reason, "exact" if booking_id else "", booking_id, decision,
            False)  # fmt: skip


def _hold_capacity(carpark: CarPark, plans: list[_Plan]) -> None:
    """CapacityDay counts the live bookings per date, as apps.bookings.capacity keeps it for every booking."""
    held: dict[date, int] = {}
    for plan in plans:
        if plan.cancelled_at is None:
            b = plan.booking
            for d in stay_dates(arrival=b.arrival, departure=b.departure, tz=carpark.tz):
                held[d] = held.get(d, 0) + 1
    table = CapacityDay._meta.db_table
    days = sorted(held)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (carpark_id, date, held) "  # noqa: S608 (the model's table)
            "SELECT %s, d, n FROM unnest(%s::date[], %s::int[]) AS v(d, n) ORDER BY d "
            f"ON CONFLICT (carpark_id, date) DO UPDATE SET held = {table}.held + excluded.held",
            [carpark.pk, days, [held[d] for d in days]],
        )


def with_no_shows(profile: Profile, share: float) -> Profile:
    """A channel's profile with a planted no-show share (tests, demos)."""
    return replace(profile, no_show=share)
