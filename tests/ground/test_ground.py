"""Meet and greet behind the real services: tasks from bookings, a return that follows its flight, drivers' states,
the at-risk alert, the key safe, condition photos (Pillow, storage API) and the shift sheet's PDF."""

import io
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pypdfium2
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from apps.access.models import Alert
from apps.accounting.selectors import booking_balance
from apps.accounting.services import payment_record
from apps.bookings import flights
from apps.bookings import services as bookings
from apps.bookings.models import Booking
from apps.carparks.models import CarPark
from apps.core.models import AuditLog
from apps.customers.erasure import customer_erase
from apps.ground import keys, photos, selectors, sheets, tasks
from apps.ground.models import ConditionPhoto, KeyMove, Task
from apps.staff.services import staff_member_set
from tests.support import ARTIFACTS

pytestmark = pytest.mark.django_db


@pytest.fixture
def carpark():
    return CarPark.objects.create(code="MG-1", name="Meet Point", capacity=50, timezone="Europe/London")


@pytest.fixture
def driver(carpark):
    return staff_member_set(username="dave", password="correct-horse-battery", carpark_codes=["MG-1"], role="driver")


def mg_booking(carpark, departure: datetime, *, flight="BA118", plate="MG51 ABC", mg=True):
    return bookings.booking_create(
        carpark=carpark, arrival=departure - timedelta(days=2), departure=departure, customer_name="Mo Greet",
        vehicles=[{"registration": plate}], source="staff", price=Decimal("90.00"), flight_return=flight,
        meet_and_greet=mg,
    )  # fmt: skip


def jpeg(size=(2400, 1800), fmt="JPEG") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, fmt)
    return SimpleUploadedFile("car.jpg", buffer.getvalue(), content_type="image/jpeg")


def test_tasks_come_from_meet_and_greet_bookings_and_the_return_follows_the_flight(carpark):
    departure = timezone.now() + timedelta(hours=6)
    booking = mg_booking(carpark, departure)
    mg_booking(carpark, departure, plate="PL41N", mg=False)  # a plain booking: no tasks
    assert sorted(Task.objects.values_list("kind", flat=True)) == ["collect", "park", "return"]
    assert Task.objects.get(kind="collect").due_at == booking.arrival
    back = Task.objects.annotate(due=tasks.DUE).get(kind="return")
    assert back.due == departure
    scheduled = departure - timedelta(minutes=30)
    flights.flight_statuses_report(updates=[{
        "flight": "BA0118", "date": timezone.localtime(departure, carpark.tz).date().isoformat(), "status": "delayed",
        "scheduled": scheduled.isoformat(), "estimated": (scheduled + timedelta(hours=2)).isoformat(), "actual": None,
    }])  # fmt: skip
    back = Task.objects.annotate(due=tasks.DUE).get(kind="return")
    assert back.due == scheduled + timedelta(hours=2, minutes=45)  # landing + the baggage allowance
    bookings.booking_cancel(booking=booking)
    assert not Task.objects.exists()


def test_a_driver_takes_starts_and_finishes_once_with_photos_and_a_key(carpark, driver, settings, tmp_path):
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                                                          "OPTIONS": {"location": str(tmp_path)}}}  # fmt: skip
    mg_booking(carpark, timezone.now() + timedelta(days=1))
    collect = Task.objects.get(kind="collect")
    assert selectors.driver_tasks(user_id=driver.pk)["open"][0]["id"] == collect.pk
    with pytest.raises(tasks.TaskRefused, match="start the task first"):
        tasks.task_finish(task_id=collect.pk, driver=driver)
    tasks.task_assign(task_id=collect.pk, driver=driver, actor=driver)
    tasks.task_start(task_id=collect.pk, driver=driver)
    with pytest.raises(tasks.TaskRefused, match="photograph the car first: front, rear, left, right"):
        tasks.task_finish(task_id=collect.pk, driver=driver)

    with pytest.raises(photos.PhotoRefused, match="not a photo"):
        photos.condition_photo_add(task_id=collect.pk, angle="front", driver=driver,
                                   upload=SimpleUploadedFile("x.jpg", b"not an image at all"))  # fmt: skip
    huge = SimpleUploadedFile("big.jpg", b"\xff" * (15 * 1024 * 1024 + 1))
    with pytest.raises(photos.PhotoRefused, match="over 15 MB"):
        photos.condition_photo_add(task_id=collect.pk, angle="front", driver=driver, upload=huge)
    for angle in ("front", "rear", "left", "right"):
        photo = photos.condition_photo_add(task_id=collect.pk, angle=angle, driver=driver, upload=jpeg())
    assert (photo.width, photo.height) == (1600, 1200)  # resized on the server
    stored = Path(tmp_path) / photo.image.name
    assert stored.exists() and Image.open(stored).format == "JPEG"

    tag = keys.key_tag_move(carpark_id=carpark.pk, number="k17", actor=driver, to_driver=driver, task_id=collect.pk)
    assert tag.number == "K17" and tag.booking_id == collect.booking_id
    assert selectors.keys_out(carpark_ids=[carpark.pk])[0]["driver"] == "dave"
    keys.key_tag_move(carpark_id=carpark.pk, number="K17", actor=driver, to_slot="A3")
    keys.key_tag_move(carpark_id=carpark.pk, number="K17", actor=driver, to_slot="A3")  # already there: no move
    assert list(KeyMove.objects.order_by("id").values_list("from_holder", "to_holder")) == [
        ("not issued", "driver dave"), ("driver dave", "safe slot A3"),
    ]  # fmt: skip
    assert selectors.keys_out(carpark_ids=[carpark.pk]) == []
    with pytest.raises(keys.KeyRefused):
        keys.key_tag_move(carpark_id=carpark.pk, number="K17", actor=driver, to_slot="A1", to_driver=driver)

    task, finished = tasks.task_finish(task_id=collect.pk, driver=driver)
    again, finished_again = tasks.task_finish(task_id=collect.pk, driver=driver)
    assert (task.state, finished, finished_again, again.finished_at) == ("done", True, False, task.finished_at)
    assert AuditLog.objects.filter(action="task.finish").count() == 1

    # the photos go when the customer's data is erased (on request or at the end of retention), files and all
    booking = collect.booking
    Booking.objects.filter(pk=booking.pk).update(status="departed", departure=timezone.now() - timedelta(hours=1))
    payment_record(booking_id=booking.pk, amount=booking_balance(booking.pk), method="card")
    erasure = customer_erase(plate="MG51 ABC", reason="asked to be forgotten")
    assert erasure.counts["ground.ConditionPhoto"] == 4
    assert not ConditionPhoto.objects.exists() and not stored.exists()


def test_a_driver_reports_a_problem_and_staff_give_the_task_to_another(carpark, driver):
    other = staff_member_set(username="ola", password="correct-horse-battery", carpark_codes=["MG-1"], role="driver")
    mg_booking(carpark, timezone.now() + timedelta(days=1))
    park = Task.objects.get(kind="park")
    tasks.task_start(task_id=park.pk, driver=driver)
    with pytest.raises(tasks.TaskRefused, match="say what"):
        tasks.task_problem(task_id=park.pk, driver=driver, note=" ")
    assert tasks.task_problem(task_id=park.pk, driver=driver, note="flat tyre").state == "problem"
    assert tasks.task_assign(task_id=park.pk, driver=other, actor=None).driver == other
    task, finished = tasks.task_finish(task_id=tasks.task_start(task_id=park.pk, driver=other).pk, driver=other)
    assert finished and task.state == "done"  # parking needs no photos


def test_a_return_with_no_driver_half_an_hour_before_alerts_staff_once(carpark, driver):
    soon = mg_booking(carpark, timezone.now() + timedelta(minutes=20))
    mg_booking(carpark, timezone.now() + timedelta(hours=3), plate="L8TER")
    assert tasks.returns_at_risk_alert() == 1
    assert tasks.returns_at_risk_alert() == 0  # once
    assert [t["at_risk"] for t in selectors.board_tasks(carpark_ids=[carpark.pk]) if t["kind"] == "return"] == [
        True, False,
    ]  # fmt: skip
    alert = Alert.objects.get(reason="return_at_risk")
    assert alert.plate == "MG51ABC" and soon.reference in alert.detail and alert.lane_id is None
    taken = Task.objects.get(booking__vehicles__registration="L8TER", kind="return")
    tasks.task_assign(task_id=taken.pk, driver=driver, actor=driver)
    assert tasks.returns_at_risk_alert(now=timezone.now() + timedelta(hours=3)) == 0  # it has a driver


def test_the_shift_sheet_pdf_renders_and_its_first_page_is_kept_as_a_picture(carpark):
    today = timezone.localtime(timezone.now(), carpark.tz).replace(hour=12, minute=0)
    late = mg_booking(carpark, today + timedelta(hours=2))
    mg_booking(carpark, today + timedelta(hours=1), plate="EARL1", mg=False, flight="")
    bookings.booking_create(
        carpark=carpark, arrival=today, departure=today + timedelta(days=5), customer_name="Ann Arriving",
        vehicles=[{"registration": "ARR1VE"}], source="staff", price=Decimal("40.00"), flight_outbound="EZY22",
    )  # fmt: skip
    scheduled = late.departure - timedelta(minutes=30)
    flights.flight_statuses_report(updates=[{
        "flight": "BA118", "date": today.date().isoformat(), "status": "delayed", "scheduled": scheduled.isoformat(),
        "estimated": (scheduled + timedelta(hours=1)).isoformat(), "actual": None,
    }])  # fmt: skip
    sheet = selectors.shift_sheet(carpark=carpark, day=today.date())
    assert [r["plates"] for r in sheet["returns"]] == ["EARL1", "MG51ABC"]  # by due-out time
    assert sheet["returns"][1]["flight_status"] == "delayed" and sheet["returns"][1]["meet_and_greet"]
    assert [r["plates"] for r in sheet["arrivals"]] == ["ARR1VE"]
    pdf = sheets.shift_sheet_pdf(sheet, base_url="http://localhost/")
    assert pdf.startswith(b"%PDF")
    document = pypdfium2.PdfDocument(pdf)
    text = document[0].get_textpage().get_text_range()
    assert "MG51ABC" in text and "delayed" in text and "Arrivals" in text
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    document[0].render(scale=1.5).to_pil().save(ARTIFACTS / "shift-sheet-page-1.png")
    assert (ARTIFACTS / "shift-sheet-page-1.png").stat().st_size > 10_000


def test_create_staff_makes_a_driver(carpark, monkeypatch):
    from django.core.management import call_command

    from apps.staff.models import StaffAssignment

    monkeypatch.setenv("PARKGATE_PASSWORD", "correct-horse-battery")
    call_command("create_staff", "--username", "dora", "--carpark", "MG-1", "--role", "driver", stdout=io.StringIO())
    assert StaffAssignment.objects.get(user__username="dora").role == "driver"
