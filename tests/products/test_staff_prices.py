"""The staff's price calendar editor (/dashboard/prices/<car park>/): ranges (overlaps refused naming the other),
a stay's price preview, CSV export and import, stop-sell switches; supervisors of the car park only."""

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from apps.products.models import PriceSeason, Product, StopSell
from apps.staff.models import StaffAssignment

pytestmark = pytest.mark.django_db(transaction=True)  # the views' services run on other threads


def message(response) -> str:
    assert response.status_code == 302, response.content
    return parse_qs(urlsplit(response["Location"]).query)["message"][0]


def test_price_calendar_editor(demo_world):
    staff = Client()
    staff.force_login(get_user_model().objects.get(username="demo"))
    page = staff.get("/dashboard/prices/LHR-T5/")
    assert page.status_code == 200 and "2026-01-01" in page.text and "2030-12-31" in page.text  # MG's range
    add = {"action": "add_range", "product": "MG", "brand": "", "daily_rate": "30.00", "starts": "2027-01-01"}
    refused = message(staff.post("/dashboard/prices/LHR-T5/", {**add, "channel": "", "ends": "2027-01-31"}))
    assert refused == "Refused: MG all 2027-01-01..2027-01-31 overlaps MG all 2026-01-01..2030-12-31"
    assert message(staff.post("/dashboard/prices/LHR-T5/", {**add, "channel": "web", "ends": "2027-01-31"})) == (
        "Range added."
    )
    preview = staff.get(
        "/dashboard/prices/LHR-T5/",
        {
            "preview_product": "MG",
            "preview_fare": "saver",
            "preview_channel": "web",
            "preview_from": "2027-01-30",
            "preview_days": "3",
        },
    )
    assert 'id="breakdown-total">£76.50<' in preview.text  # 2 x 30 x 0.9 (the web range) + 25 x 0.9 (February)
    exported = staff.get("/dashboard/prices/LHR-T5/calendar.csv")
    assert exported["Content-Type"].startswith("text/csv") and exported.content.count(b"\n") == 3
    upload = {"action": "import", "csv": SimpleUploadedFile("calendar.csv", exported.content, content_type="text/csv")}
    assert message(staff.post("/dashboard/prices/LHR-T5/", upload)) == "Imported 2 ranges (the calendar was replaced)."
    assert PriceSeason.objects.filter(product__carpark__code="LHR-T5").count() == 2
    day = timezone.localdate() + timedelta(days=1)
    product_id = Product.objects.get(carpark__code="LHR-T5", code="PR").pk
    switch = {"action": "stop_sell", "product_id": product_id, "day": day.isoformat(), "channel": "web", "stopped": "1"}
    assert message(staff.post("/dashboard/prices/LHR-T5/", switch)) == "Stop-sell updated."
    assert StopSell.objects.filter(product_id=product_id, date=day, channel="web").exists()
    assert (
        f'class="stopped" data-day="{day.isoformat()}" data-channel="web"'
        in staff.get("/dashboard/prices/LHR-T5/").text
    )
    StaffAssignment.objects.filter(user__username="demo", carpark__code="MAN-T2").update(role="operator")
    assert staff.get("/dashboard/prices/MAN-T2/").status_code == 404  # supervisors only
