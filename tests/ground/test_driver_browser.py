"""A meet-and-greet driver on a phone (headless Chromium at phone size, Debian's chromium) against a real `serve`:
takes a task, starts it, records the key tag, photographs the car from four sides and finishes it."""

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from PIL import Image
from playwright.sync_api import expect

from apps.bookings import services as bookings
from apps.carparks.models import CarPark
from apps.ground.models import ConditionPhoto, KeyTag, Task
from apps.staff.services import staff_member_set
from tests.dashboard.conftest import chromium  # noqa: F401  (the module's browser)
from tests.support import ARTIFACTS

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]
PHONE = {"width": 390, "height": 844}
PASSWORD = "correct-horse-battery"


def test_a_driver_takes_a_task_photographs_the_car_and_finishes_it(parkgate, chromium, tmp_path):  # noqa: F811
    carpark = CarPark.objects.create(code="MG-B", name="Meet Point", capacity=20, timezone="Europe/London")
    staff_member_set(username="dina", password=PASSWORD, carpark_codes=["MG-B"], role="driver")
    arrival = timezone.now() + timedelta(minutes=40)
    bookings.booking_create(
        carpark=carpark, arrival=arrival, departure=arrival + timedelta(days=4), customer_name="Gregor Meet",
        vehicles=[{"registration": "MG24 CAR", "make": "Skoda", "colour": "Blue"}], source="staff",
        price=Decimal("99.00"), flight_return="BA118", meet_and_greet=True,
    )  # fmt: skip
    photo = tmp_path / "car.jpg"
    Image.new("RGB", (3000, 2000), (20, 60, 160)).save(photo, "JPEG")
    not_a_photo = tmp_path / "notes.jpg"
    not_a_photo.write_bytes(b"this is not an image")

    context = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(f"{parkgate.http}/ops/driver/")
    page.fill("input[name=username]", "dina")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/ops/driver/")
    collect = Task.objects.get(kind="collect")
    card = page.locator(f'article[data-task="{collect.pk}"]')
    expect(card).to_contain_text("MG24CAR")
    card.get_by_role("button", name="Take it").tap()
    expect(page.locator("#state")).to_have_text("assigned")
    page.get_by_role("button", name="Start").tap()
    expect(page.locator("#state")).to_have_text("started")
    assert page.locator("#photo").get_attribute("capture") == "environment"
    assert page.locator("#photo").get_attribute("accept") == "image/*"

    page.fill("#number", "42")
    page.get_by_role("button", name="Record the key").tap()
    expect(page.locator("#key-tag")).to_have_text("42")

    page.get_by_role("button", name="Finish").tap()  # too early: no photos yet
    expect(page.get_by_role("alert")).to_contain_text("photograph the car first")
    page.select_option("#angle", "front")
    page.set_input_files("#photo", str(not_a_photo))
    page.get_by_role("button", name="Upload photo").tap()
    expect(page.get_by_role("alert")).to_contain_text("not a photo")
    for angle in ("front", "rear", "left", "right"):
        page.select_option("#angle", angle)
        page.set_input_files("#photo", str(photo))
        page.get_by_role("button", name="Upload photo").tap()
        expect(page.locator(f'img[alt="{angle} of MG24CAR"]')).to_be_visible()
    expect(page.locator("#photos-complete")).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "driver-task-phone.png", full_page=True)
    page.get_by_role("button", name="Finish").tap()
    page.wait_for_url("**/ops/driver/?m=*")
    expect(page.get_by_role("status")).to_have_text("Task finished")
    context.close()

    collect.refresh_from_db()
    assert collect.state == "done" and collect.driver.username == "dina" and collect.finished_at is not None
    shots = ConditionPhoto.objects.filter(task=collect)
    assert sorted(shots.values_list("angle", flat=True)) == ["front", "left", "rear", "right"]
    assert {(p.width, p.height) for p in shots} == {(1600, 1067)}  # resized on the server
    with shots.first().image.open("rb") as stored:
        assert Image.open(io.BytesIO(stored.read())).size == (1600, 1067)
    assert KeyTag.objects.get(number="42").driver.username == "dina"
