"""Reads for the ground: a driver's next tasks, one task, the keys out, the day's shift sheet."""

from datetime import datetime, time, timedelta

from django.db.models import BooleanField, Count, ExpressionWrapper, Q
from django.utils import timezone

from apps.bookings.models import Booking
from apps.carparks.models import CarPark
from apps.ground.models import ConditionPhoto, KeyTag, Task
from apps.ground.tasks import DUE, MEET_AND_GREET, missing_angles
from apps.staff.models import StaffAssignment

DRIVER_ROLES = (StaffAssignment.Role.DRIVER,)
AHEAD = timedelta(hours=24)  # a driver's page shows the tasks due within this (and any overdue)


def carpark_ids_for(*, user_id: int, roles: tuple[str, ...]) -> list[int]:
    return list(
        StaffAssignment.objects.filter(user_id=user_id, user__is_active=True, role__in=roles).values_list(
            "carpark_id", flat=True
        )
    )


def _task_rows(qs) -> list[dict]:
    rows = []
    for t in qs.select_related("booking", "booking__customer", "carpark", "driver", "key_tag").prefetch_related(
        "booking__vehicles"
    ):
        car = t.booking.vehicles.all()[:1]
        rows.append(
            {
                "id": t.id, "kind": t.kind, "kind_label": t.get_kind_display(), "state": t.state, "due": t.due,
                "tz": t.carpark.tz, "place": t.place, "carpark": t.carpark.code, "reference": t.booking.reference,
                "customer": t.booking.customer.name, "plate": car[0].registration if car else "",
                "car": " ".join(x for x in (car[0].colour, car[0].make, car[0].model) if x) if car else "",
                "flight": t.booking.flight_return, "flight_status": t.booking.return_status,
                "flight_estimated": t.booking.return_estimated, "driver": t.driver.get_username() if t.driver else "",
                "key_tag": t.key_tag.number if t.key_tag else "", "note": t.note,
                "at_risk": t.at_risk_at is not None and t.driver_id is None,
            }
        )  # fmt: skip
    return rows


def driver_tasks(*, user_id: int, now: datetime | None = None) -> dict:
    """The driver's own tasks not yet done, then the open ones at their car parks, each by due time."""
    now = now or timezone.now()
    carparks = carpark_ids_for(user_id=user_id, roles=DRIVER_ROLES)
    live = Task.objects.annotate(due=DUE).filter(carpark_id__in=carparks, due__lte=now + AHEAD).order_by("due", "id")
    mine = live.filter(driver_id=user_id).exclude(state=Task.State.DONE)
    open_ = live.filter(state=Task.State.OPEN, driver__isnull=True)
    return {"mine": _task_rows(mine), "open": _task_rows(open_)}


def task_for_user(*, task_id: int, user_id: int, roles: tuple[str, ...]) -> dict | None:
    """One task, if it is at a car park where the user has one of `roles`; with its photos and missing angles."""
    carparks = carpark_ids_for(user_id=user_id, roles=roles)
    task = Task.objects.annotate(due=DUE).filter(pk=task_id, carpark_id__in=carparks)
    rows = _task_rows(task)
    if not rows:
        return None
    row = rows[0]
    instance = Task.objects.get(pk=task_id)
    row["driver_id"] = instance.driver_id
    row["photos"] = list(ConditionPhoto.objects.filter(task_id=task_id).order_by("angle").values("id", "angle"))
    row["missing"] = missing_angles(instance)
    row["carpark_id"] = instance.carpark_id
    return row


def photo_for_user(*, photo_id: int, user_id: int, roles: tuple[str, ...]) -> ConditionPhoto | None:
    carparks = carpark_ids_for(user_id=user_id, roles=roles)
    return ConditionPhoto.objects.filter(pk=photo_id, task__carpark_id__in=carparks).first()


def keys_out(*, carpark_ids: list[int]) -> list[dict]:
    """Key tags held by a driver now (not in the safe), longest out first."""
    tags = (
        KeyTag.objects.filter(carpark_id__in=carpark_ids, driver__isnull=False)
        .select_related("driver", "booking", "carpark")
        .order_by("moved_at")
    )
    return [
        {"number": t.number, "carpark": t.carpark.code, "driver": t.driver.get_username(), "since": t.moved_at,
         "tz": t.carpark.tz, "booking": t.booking.reference if t.booking else ""}
        for t in tags
    ]  # fmt: skip


def keys_out_counts(*, carpark_ids: list[int]) -> dict[int, int]:
    rows = KeyTag.objects.filter(carpark_id__in=carpark_ids, driver__isnull=False).values("carpark_id")
    return {r["carpark_id"]: r["n"] for r in rows.annotate(n=Count("id"))}


def shift_sheet(*, carpark: CarPark, day) -> dict:
    """The car park's arrivals and returns on its local `day`, each list by time, with the return flight's status.
    A return is listed at its due-out time (later than booked when the flight lands late)."""
    tz = carpark.tz
    start = timezone.make_aware(datetime.combine(day, time.min), tz)
    end = start + timedelta(days=1)
    live = Booking.objects.filter(carpark=carpark).exclude(status=Booking.Status.CANCELLED)
    live = live.select_related("customer").prefetch_related("vehicles")

    def rows(qs, field: str) -> list[dict]:
        return [
            {"at": getattr(b, field), "booked": b.departure, "reference": b.reference, "customer": b.customer.name,
             "plates": ", ".join(v.registration for v in b.vehicles.all()), "status": b.status,
             "meet_and_greet": b.mg, "flight": b.flight_outbound if field == "arrival" else b.flight_return,
             "flight_status": "" if field == "arrival" else b.return_status,
             "flight_estimated": None if field == "arrival" else b.return_estimated}
            for b in qs.order_by(field, "reference")
        ]  # fmt: skip

    mg = {"mg": ExpressionWrapper(Q(MEET_AND_GREET), output_field=BooleanField())}
    return {
        "carpark": carpark, "day": day, "tz": tz,
        "arrivals": rows(live.filter(arrival__gte=start, arrival__lt=end).annotate(**mg), "arrival"),
        "returns": rows(live.filter(due_out__gte=start, due_out__lt=end).annotate(**mg), "due_out"),
    }  # fmt: skip


def board_tasks(*, carpark_ids: list[int], now: datetime | None = None) -> list[dict]:
    """Staff's view: tasks not done at their car parks due within a day (or overdue), by due time."""
    now = now or timezone.now()
    live = Task.objects.annotate(due=DUE).filter(carpark_id__in=carpark_ids, due__lte=now + AHEAD)
    return _task_rows(live.exclude(state=Task.State.DONE).order_by("due", "id"))
