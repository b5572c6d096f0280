"""Meet-and-greet tasks: made from bookings, taken by drivers, started and finished, alerts when a return is at risk.

A task's state moves open -> assigned -> started -> done, or to `problem` (the driver says what is wrong; staff
re-assign it). Finishing a finished task changes nothing. Each change is audited (apps.core AuditLog)."""

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import BooleanField, Case, ExpressionWrapper, F, Q, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.access import services as access
from apps.bookings.models import Booking
from apps.core.services import audit_log_record
from apps.ground.models import ConditionPhoto, Task
from apps.staff.models import StaffAssignment

# Which bookings are meet and greet. The products issue adds the product: re-point this one predicate at it then
# (e.g. Q(product__code="MG")); nothing else here knows how a booking is sold.
MEET_AND_GREET = Q(meet_and_greet=True)
PARK_WITHIN = timedelta(minutes=30)  # a collected car is parked within this
AT_RISK_BEFORE = timedelta(minutes=30)  # a return with no driver this close to its time alerts staff
HANDOVERS = (Task.Kind.COLLECT, Task.Kind.RETURN)  # finished only with the car's condition photographed

# When a task is due: a return when the customer can be at the car (landing + allowance once the flight is known,
# else the booked departure), so it moves live with the flight; the others as made.
DUE = Case(
    When(kind=Task.Kind.RETURN, then=Coalesce("booking__return_ready_at", "booking__departure")),
    default=F("due_at"),
)


class TaskRefused(Exception):
    """The task cannot do that now (the message says why, for the driver)."""


def tasks_for_booking(*, booking_id: int, new: bool = False) -> list[Task]:
    """Make (or bring up to date) a booking's tasks: a meet-and-greet booking that is not cancelled has a collect,
    a park and a return task; any other has none left that nobody started. Idempotent. `new`: the booking was made
    in the caller's transaction, so it has no tasks yet (and an error rolls back to the caller's savepoint)."""
    with transaction.atomic(savepoint=not new):
        is_mg = ExpressionWrapper(MEET_AND_GREET, output_field=BooleanField())
        booking = Booking.objects.select_related("carpark").annotate(is_mg=is_mg).filter(pk=booking_id).first()
        if booking is None:
            return []
        if booking.status == Booking.Status.CANCELLED or not booking.is_mg:
            if not new:
                Task.objects.filter(booking=booking, state__in=[Task.State.OPEN, Task.State.ASSIGNED]).delete()
            return []
        terminal = f"Terminal drop-off, {booking.carpark.name}"
        plan = {
            Task.Kind.COLLECT: (booking.arrival, terminal),
            Task.Kind.PARK: (booking.arrival + PARK_WITHIN, booking.carpark.name),
            Task.Kind.RETURN: (booking.departure, terminal.replace("drop-off", "pick-up")),
        }
        if new:
            return Task.objects.bulk_create(
                Task(booking=booking, kind=kind, carpark=booking.carpark, due_at=due_at, place=place)
                for kind, (due_at, place) in plan.items()
            )
        tasks = []
        for kind, (due_at, place) in plan.items():
            task, created = Task.objects.get_or_create(
                booking=booking, kind=kind, defaults={"carpark": booking.carpark, "due_at": due_at, "place": place}
            )
            if not created and task.state not in (Task.State.DONE,) and (task.due_at, task.place) != (due_at, place):
                task.due_at, task.place, task.carpark = due_at, place, booking.carpark
                task.save(update_fields=["due_at", "place", "carpark", "updated_at"])
            tasks.append(task)
        return tasks


def _is_driver(user_id: int, carpark_id: int) -> bool:
    return StaffAssignment.objects.filter(
        user_id=user_id, carpark_id=carpark_id, role=StaffAssignment.Role.DRIVER, user__is_active=True
    ).exists()


def _locked(task_id: int) -> Task:
    task = Task.objects.select_for_update().filter(pk=task_id).first()
    if task is None:
        raise TaskRefused("no such task")
    return task


def _audit(task: Task, action: str, actor, **data) -> None:
    audit_log_record(action=f"task.{action}", actor=actor, obj=task, carpark=task.carpark, data=data)


def task_assign(*, task_id: int, driver, actor) -> Task:
    """Give the task to a driver of its car park (staff assigning, or the driver taking it with actor=driver)."""
    with transaction.atomic():
        task = _locked(task_id)
        if not _is_driver(driver.pk, task.carpark_id):
            raise TaskRefused(f"{driver.get_username()} is not a driver at this car park")
        if task.state in (Task.State.STARTED, Task.State.DONE) and task.driver_id != driver.pk:
            raise TaskRefused("the task is already under way with another driver")
        if task.state == Task.State.DONE or (task.state == Task.State.STARTED and task.driver_id == driver.pk):
            return task
        task.driver, task.state = driver, Task.State.ASSIGNED
        task.save(update_fields=["driver", "state", "updated_at"])
        _audit(task, "assign", actor, driver=driver.get_username())
        return task


def task_start(*, task_id: int, driver) -> Task:
    """The driver starts the task (taking it if nobody has it). Starting it again changes nothing."""
    with transaction.atomic():
        task = _locked(task_id)
        if task.state == Task.State.DONE:
            raise TaskRefused("the task is finished")
        if task.driver_id not in (None, driver.pk):
            raise TaskRefused("the task is another driver's")
        if not _is_driver(driver.pk, task.carpark_id):
            raise TaskRefused("you are not a driver at this car park")
        if task.state == Task.State.STARTED:
            return task
        task.driver, task.state, task.started_at = driver, Task.State.STARTED, timezone.now()
        task.save(update_fields=["driver", "state", "started_at", "updated_at"])
        _audit(task, "start", driver)
        return task


def missing_angles(task: Task) -> list[str]:
    """The hand-over photos still to take (collect and return tasks need the four sides)."""
    if task.kind not in HANDOVERS:
        return []
    taken = set(ConditionPhoto.objects.filter(task=task).values_list("angle", flat=True))
    return [angle for angle in ConditionPhoto.REQUIRED_ANGLES if angle not in taken]


def task_finish(*, task_id: int, driver) -> tuple[Task, bool]:
    """The driver finishes the task; returns it and whether this call finished it (a second tap: False, unchanged)."""
    with transaction.atomic():
        task = _locked(task_id)
        if task.state == Task.State.DONE:
            return task, False
        if task.driver_id != driver.pk or task.state != Task.State.STARTED:
            raise TaskRefused("start the task first")
        missing = missing_angles(task)
        if missing:
            raise TaskRefused(f"photograph the car first: {', '.join(missing)}")
        task.state, task.finished_at = Task.State.DONE, timezone.now()
        task.save(update_fields=["state", "finished_at", "updated_at"])
        _audit(task, "finish", driver)
        return task, True


def task_problem(*, task_id: int, driver, note: str) -> Task:
    """The driver cannot do the task: it goes back to staff with the driver's note."""
    note = note.strip()[:500]
    if not note:
        raise TaskRefused("say what the problem is")
    with transaction.atomic():
        task = _locked(task_id)
        if task.state == Task.State.DONE:
            raise TaskRefused("the task is finished")
        if task.driver_id not in (None, driver.pk):
            raise TaskRefused("the task is another driver's")
        task.state, task.note, task.driver = Task.State.PROBLEM, note, driver
        task.save(update_fields=["state", "note", "driver", "updated_at"])
        _audit(task, "problem", driver, note=note)
        return task


def returns_at_risk_alert(*, now: datetime | None = None) -> int:
    """Returns with no driver within AT_RISK_BEFORE of their (live) time: one alert each to the car park's staff."""
    now = now or timezone.now()
    alerted = 0
    with transaction.atomic():
        due = (
            Task.objects.select_for_update(of=("self",), skip_locked=True)
            .select_related("booking", "carpark")
            .annotate(due=DUE)
            .filter(kind=Task.Kind.RETURN, driver__isnull=True, at_risk_at__isnull=True, due__lte=now + AT_RISK_BEFORE)
            .exclude(state__in=[Task.State.DONE])
        )
        for task in due:
            plate = task.booking.vehicles.values_list("registration", flat=True).first() or ""
            detail = f"return of {task.booking.reference} due {timezone.localtime(task.due, task.carpark.tz):%H:%M}"
            access.alert_raise_staff(carpark_id=task.carpark_id, plate=plate, reason="return_at_risk", detail=detail)
            Task.objects.filter(pk=task.pk).update(at_risk_at=now)
            alerted += 1
    return alerted
