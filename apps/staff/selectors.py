"""Staff reads: who may see which car park, and the dashboard's snapshot and search.

Every function returns plain data (dicts/lists of JSON-ready values), never querysets: the callers are async edges
(the dashboard consumer, async views) that run these in a worker thread and send the result as it is.
"""

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.sessions.models import Session
from django.db.models import Count, Q, Sum
from django.utils import timezone

from apps.access import cameras as access_cameras
from apps.access import selectors as access_selectors
from apps.access.models import Alert, Device, PlateRead, Visit
from apps.agents.models import Agent
from apps.bookings.models import Booking, Vehicle
from apps.bookings.selectors import sold_words
from apps.carparks.models import CarPark, Lane
from apps.core import plates
from apps.staff.models import StaffAssignment

#: Roles that run a car park from the live dashboard (accountants see accounting views only).
DASHBOARD_ROLES = ("operator", "supervisor")
#: Roles that may open a barrier by hand.
BARRIER_ROLES = ("operator", "supervisor")
#: Roles that may map a vendor camera to a lane.
CAMERA_ROLES = ("supervisor",)
#: Roles that may unlock staff logins locked out by django-axes (an unlock grants nothing but the right to try again).
UNLOCK_ROLES = ("supervisor",)

LATEST_READS = 20
LIST_LIMIT = 100  # arrivals / departures / overstays / alerts shown per car park (the totals are given too)


# --- permissions -------------------------------------------------------------------------------------------------


def staff_roles(*, user_id: int) -> dict[int, str]:
    """The staff member's role per car park id (empty for an inactive user)."""
    return dict(StaffAssignment.objects.filter(user_id=user_id, user__is_active=True).values_list("carpark_id", "role"))


def carpark_ids_for_user(*, user_id: int, roles: tuple[str, ...] = DASHBOARD_ROLES) -> list[int]:
    """Car parks whose operations this staff member may watch, ordered by code."""
    return list(
        StaffAssignment.objects.filter(user_id=user_id, user__is_active=True, role__in=roles)
        .values_list("carpark_id", flat=True)
        .order_by("carpark__code")
    )


def session_is_current(*, session_key: str | None) -> bool:
    """Is this login still valid (not logged out, not expired)?"""
    if not session_key:
        return False
    return Session.objects.filter(session_key=session_key, expire_date__gt=timezone.now()).exists()


def lane_carpark_id(*, lane_id: int) -> int | None:
    return Lane.objects.filter(pk=lane_id).values_list("carpark_id", flat=True).first()


# --- the dashboard snapshot ---------------------------------------------------------------------------------------


def carpark_occupancy(*, carpark_id: int) -> int:
    """Open visits (the dashboards' occupancy figure)."""
    return Visit.objects.filter(carpark_id=carpark_id, exited_at__isnull=True).count()


def carpark_tiles(*, carpark_ids: list[int]) -> list[dict]:
    """One tile per car park with its occupancy (open visits): what the page renders before the socket opens."""
    rows = (
        CarPark.objects.filter(pk__in=carpark_ids)
        .annotate(occupancy=Count("visits", filter=Q(visits__exited_at__isnull=True)))
        .order_by("code")
        .values("id", "code", "name", "capacity", "occupancy")
    )
    return list(rows)


def dashboard_snapshot(*, carpark_ids: list[int], now: datetime | None = None) -> list[dict]:
    """Everything the dashboard shows for each car park, as of now."""
    now = now or timezone.now()
    return [
        carpark_snapshot(carpark=carpark, now=now)
        for carpark in CarPark.objects.filter(pk__in=carpark_ids).order_by("code")
    ]


def carpark_snapshot(*, carpark: CarPark, now: datetime) -> dict:
    day_start, day_end = local_day(carpark, now)
    occupancy = Visit.objects.filter(carpark=carpark, exited_at__isnull=True).count()
    return {
        "id": carpark.id,
        "code": carpark.code,
        "name": carpark.name,
        "capacity": carpark.capacity,
        "timezone": carpark.timezone,
        "occupancy": occupancy,
        "day_start": iso(day_start),
        "day_end": iso(day_end),
        "chart": occupancy_today(carpark=carpark, day_start=day_start, now=now, occupancy_now=occupancy),
        "lanes": lanes_with_devices(carpark=carpark),
        "cameras": access_cameras.cameras_of_carpark(carpark_id=carpark.id),
        "arrivals": expected_today(carpark=carpark, field="arrival", day_start=day_start, day_end=day_end),
        "departures": expected_today(carpark=carpark, field="departure", day_start=day_start, day_end=day_end),
        "overstays": overstays(carpark=carpark, now=now),
        "alerts": open_alerts(carpark_id=carpark.id),
        "reads": latest_reads(carpark_id=carpark.id),
    }


def local_day(carpark: CarPark, now: datetime) -> tuple[datetime, datetime]:
    """Today's midnight-to-midnight at the car park, as aware datetimes (a clock-change day is 23 or 25 h)."""
    local = timezone.localtime(now, carpark.tz)
    start = datetime.combine(local.date(), datetime.min.time(), tzinfo=carpark.tz)
    end = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tzinfo=carpark.tz)
    return start, end


def occupancy_today(*, carpark: CarPark, day_start: datetime, now: datetime, occupancy_now: int) -> list[list]:
    """Occupancy steps since local midnight as [[iso time, n], ...], at most one point per minute.

    Worked backwards from the current count, so the chart always ends at the tile's number.
    """
    entries = Visit.objects.filter(carpark=carpark, entered_at__gte=day_start).values_list("entered_at", flat=True)
    exits = Visit.objects.filter(carpark=carpark, exited_at__gte=day_start).values_list("exited_at", flat=True)
    changes = [(t, 1) for t in entries if t <= now] + [(t, -1) for t in exits if t <= now]
    changes.sort()
    start_level = occupancy_now - sum(delta for _, delta in changes)
    level, per_minute = start_level, {}
    for at, delta in changes:
        level += delta
        per_minute[at.replace(second=0, microsecond=0)] = level
    points = [[iso(day_start), max(start_level, 0)]]
    points += [[iso(minute), n] for minute, n in per_minute.items()]
    points.append([iso(now), occupancy_now])
    return points


def lanes_with_devices(*, carpark: CarPark) -> list[dict]:
    """Each lane with its controller (online or not) and the barrier state it last reported."""
    devices_by_lane: dict[int, list[Device]] = defaultdict(list)
    for device in Device.objects.filter(carpark=carpark, revoked_at__isnull=True).prefetch_related("lanes"):
        for lane in device.lanes.all():
            devices_by_lane[lane.id].append(device)
    lanes = []
    for lane in Lane.objects.filter(carpark=carpark).order_by("code"):
        devices = sorted(devices_by_lane.get(lane.id, []), key=lambda d: (not d.online, d.created_at))
        device = devices[0] if devices else None
        lanes.append(
            {
                "id": lane.id,
                "code": lane.code,
                "direction": lane.direction,
                "device": str(device.id) if device else None,
                "device_name": (device.name or f"controller {str(device.id)[:8]}") if device else None,
                "online": bool(device and device.online),
                "barrier": (device.barriers or {}).get(lane.code, "unknown") if device else "unknown",
                "last_seen_at": iso(device.last_seen_at) if device and device.last_seen_at else None,
                "clock_offset_s": device.clock_offset_s if device else None,
            }
        )
    return lanes


def expected_today(*, carpark: CarPark, field: str, day_start: datetime, day_end: datetime) -> dict:
    """Bookings arriving (or departing) today, and whether each has come (or gone)."""
    bookings = (
        Booking.objects.filter(carpark=carpark, **{f"{field}__gte": day_start, f"{field}__lt": day_end})
        .exclude(status=Booking.Status.CANCELLED)
        .select_related("customer", "product")
        .prefetch_related("vehicles", "extras__extra")
        .order_by(field)
    )
    done_statuses = ("arrived", "departed") if field == "arrival" else ("departed",)
    total = bookings.count()
    items = [
        {
            "reference": b.reference,
            "customer": b.customer.name,
            "plates": [v.registration for v in b.vehicles.all()],
            "sold": sold_words(b),
            "at": iso(getattr(b, field)),
            "status": b.status,
            "done": b.status in done_statuses,
            # the return flight as the flight-status feed reports it (apps.bookings.flights), as the booking event
            "return_flight": b.flight_return,
            "return_status": b.return_status,
            "return_estimated": iso(b.return_estimated) if b.return_estimated else None,
        }
        for b in bookings[:LIST_LIMIT]
    ]
    return {"total": total, "done": sum(1 for i in items if i["done"]), "items": items}


def overstays(*, carpark: CarPark, now: datetime) -> list[dict]:
    """Vehicles still on site past their booking's due-out time (its departure, or later when the return flight
    landed late) plus the car park's grace period."""
    cutoff = now - timedelta(minutes=carpark.grace_min)
    visits = (
        Visit.objects.filter(carpark=carpark, exited_at__isnull=True, booking__due_out__lt=cutoff)
        .select_related("booking")
        .order_by("booking__due_out")[:LIST_LIMIT]
    )
    return [
        {
            "visit": v.id,
            "plate": v.plate,
            "booking": v.booking.reference,
            "departure": iso(v.booking.due_out),
            "entered_at": iso(v.entered_at),
        }
        for v in visits
    ]


def latest_reads(*, carpark_id: int, limit: int = LATEST_READS) -> list[dict]:
    reads = (
        PlateRead.objects.filter(carpark_id=carpark_id)
        .select_related("lane", "booking")
        .order_by("-received_at", "-id")[:limit]
    )
    return [read_row(r) for r in reads]


def read_row(read: PlateRead) -> dict:
    """A read as the `read` event shows it (docs/contracts-internal.md)."""
    return {
        "id": read.id,
        "lane": read.lane.code,
        "plate": read.plate,
        "action": read.action,
        "reason": read.reason,
        "match": read.match or None,
        "booking": read.booking.reference if read.booking_id else None,
        "captured_at": iso(read.captured_at),
        "read_id": read.read_id,
    }


def open_alerts(*, carpark_id: int) -> list[dict]:
    """Unacknowledged alerts, newest first, shaped like the `alert` event."""
    return access_selectors.alerts_open(carpark_ids=[carpark_id], limit=LIST_LIMIT)


def alert_carpark_id(*, alert_id: int) -> int | None:
    return Alert.objects.filter(pk=alert_id).values_list("carpark_id", flat=True).first()


# --- search -------------------------------------------------------------------------------------------------------


def search(*, query: str, carpark_ids: list[int], limit: int = 20) -> dict:
    """Bookings, visits and reads for a plate (or a look-alike of it) or a booking's reference or agent reference,
    in the given car parks only.

    Each condition has an index of its own, so that PostgreSQL combines index scans (BitmapOr) instead of reading a
    car park's every booking or read: a plate's look-alike key also finds the plate itself (equal plates have equal
    keys), our references are upper case, and agent references are looked up in (agent, agent_ref) as typed, upper
    and lower case. tests/dashboard/test_search.py checks the plans."""
    text = query.strip()
    plate = plates.normalise(text)
    if not plate:
        return {"query": text, "bookings": [], "visits": [], "reads": []}
    key = plates.lookalike_key(text)
    by_vehicle = list(Vehicle.objects.filter(lookalike_key=key).values_list("booking_id", flat=True).distinct())
    agent_ids = list(Agent.objects.values_list("id", flat=True))
    bookings = list(
        Booking.objects.filter(carpark_id__in=carpark_ids)
        .filter(
            Q(reference=text.upper())
            | Q(agent_id__in=agent_ids, agent_ref__in={text, text.upper(), text.lower()})
            | Q(id__in=by_vehicle)
        )
        .select_related("carpark", "customer")
        .prefetch_related("vehicles")
        .order_by("-arrival")[:limit]
    )
    booking_ids = [b.id for b in bookings]
    found = Q(lookalike_key=key) | Q(booking_id__in=booking_ids)
    visits = (
        Visit.objects.filter(found, carpark_id__in=carpark_ids)
        .select_related("carpark", "booking", "entry_lane", "exit_lane")
        .order_by("-entered_at")[:limit]
    )
    reads = (
        PlateRead.objects.filter(found, carpark_id__in=carpark_ids)
        .select_related("carpark", "lane", "booking")
        .order_by("-captured_at")[:limit]
    )
    return {
        "query": text,
        "bookings": [
            {
                "reference": b.reference,
                "agent_ref": b.agent_ref,
                "carpark": b.carpark.code,
                "tz": b.carpark.timezone,
                "customer": b.customer.name,
                "plates": [v.registration for v in b.vehicles.all()],
                "arrival": b.arrival,
                "departure": b.departure,
                "status": b.status,
            }
            for b in bookings
        ],
        "visits": [
            {
                "carpark": v.carpark.code,
                "tz": v.carpark.timezone,
                "plate": v.plate,
                "booking": v.booking.reference if v.booking_id else None,
                "entered_at": v.entered_at,
                "entry_lane": v.entry_lane.code if v.entry_lane_id else None,
                "exited_at": v.exited_at,
                "exit_lane": v.exit_lane.code if v.exit_lane_id else None,
            }
            for v in visits
        ],
        "reads": [
            read_row(r)
            | {"carpark": r.carpark.code, "tz": r.carpark.timezone, "captured": r.captured_at, "score": r.score}
            for r in reads
        ],
    }


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def login_lockouts() -> dict[str, list[dict]]:
    """The accounts and client addresses django-axes locks out now: AXES_FAILURE_LIMIT failures or more within
    AXES_COOLOFF_TIME, counted per account and per address as it counts them (AXES_LOCKOUT_PARAMETERS)."""
    recent = AccessAttempt.objects.filter(attempt_time__gte=timezone.now() - settings.AXES_COOLOFF_TIME)

    def locked(field: str) -> list[dict]:
        rows = (
            recent.exclude(**{f"{field}__isnull": True})
            .values(field)
            .annotate(failures=Sum("failures_since_start"))
            .filter(failures__gte=settings.AXES_FAILURE_LIMIT)
            .order_by(field)
        )
        return [{"value": row[field], "failures": row["failures"]} for row in rows if row[field]]

    return {"usernames": locked("username"), "addresses": locked("ip_address")}
