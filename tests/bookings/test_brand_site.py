"""What a customer checks before trusting a brand's site: where the car park is (address, map link, directions),
when it is open, whom to ask, and the brand's terms, cancellation policy and privacy notice, linked from every page
and from the confirmation email. The demo world fills them in; staff edit them in the admin."""

import re
import secrets

import pytest
from django.core import mail
from django.test import Client

from apps.bookings import services
from apps.bookings.models import Booking
from apps.carparks.models import Brand, CarPark
from tests.bookings.conftest import deliver_confirmation, local

pytestmark = pytest.mark.django_db(transaction=True)

SKYLINE = "skyline.parkgate.test"
POLICIES = {"/terms/": "Terms and conditions", "/cancellation/": "Cancellation policy", "/privacy/": "Privacy notice"}


def web_booking(brand: Brand, carpark: CarPark, brand_now: bool = True) -> Booking:
    return services.booking_create(
        carpark=carpark,
        arrival=local("2027-01-10T08:00"),
        departure=local("2027-01-12T18:00"),
        customer_name="Jane Smith",
        customer_email="jane@example.com",
        vehicles=[{"registration": "AB12CDE"}],
        source=Booking.Source.WEB if brand_now else Booking.Source.STAFF,
        brand=brand if brand_now else None,
    )


def test_every_customer_page_links_the_car_parks_contact_and_policies(demo_world):
    client = Client(HTTP_HOST=SKYLINE)
    stay = {"carpark": "MAN-T2", "arrival": "2027-01-10T08:00", "departure": "2027-01-12T18:00"}
    details = {"name": "Jane Smith", "email": "jane@example.com", "phone": "0", "registration": "AB12CDE"}
    booked = client.post("/book/", {**stay, **details, "form_token": secrets.token_urlsafe()})
    assert booked.status_code == 302
    reference = booked["Location"].split("/")[-2]
    pages = ["/", "/quote/?" + "&".join(f"{k}={v}" for k, v in stay.items()), "/manage/", booked["Location"]]
    pages += [f"/manage/{reference}/", "/carparks/LHR-T5/", "/carparks/MAN-T2/", *POLICIES]
    for path in pages:
        page = client.get(path, follow=True)  # a quote without a form token is sent to one with it
        assert page.status_code == 200, path
        footer = page.text[page.text.index('<footer class="site-footer"') :]
        for href, label in POLICIES.items():
            assert f'<a href="{href}">{label}</a>' in footer, (path, href)
        assert 'href="mailto:help@skyline.parkgate.test"' in footer and 'href="tel:01614960123"' in footer, path
        assert 'href="/carparks/LHR-T5/"' in footer and 'href="/carparks/MAN-T2/"' in footer, path


def test_a_car_park_page_shows_address_map_link_hours_and_directions(demo_world):
    page = Client(HTTP_HOST=SKYLINE).get("/carparks/MAN-T2/")
    assert page.status_code == 200
    carpark = CarPark.objects.get(code="MAN-T2")
    assert carpark.address and carpark.opening_hours and carpark.directions  # the demo world fills them in
    for text in (carpark.address.splitlines()[0], carpark.opening_hours, carpark.directions.splitlines()[0]):
        assert text in page.text
    query = "+".join(", ".join(carpark.address.splitlines()).replace(",", "%2C").split())
    assert f'href="https://www.openstreetmap.org/search?query={query}"' in page.text
    # a car park the brand does not sell, and one that does not exist
    assert Client(HTTP_HOST="demo.parkgate.test").get("/carparks/MAN-T2/").status_code == 404
    assert Client(HTTP_HOST=SKYLINE).get("/carparks/NOPE/").status_code == 404


def test_a_policy_the_brand_has_not_written_is_neither_linked_nor_served(demo_world):
    Brand.objects.filter(code="skyline").update(privacy_notice="")
    client = Client(HTTP_HOST=SKYLINE)
    assert client.get("/privacy/").status_code == 404
    home = client.get("/")
    assert 'href="/privacy/"' not in home.text and 'href="/terms/"' in home.text


def test_the_confirmation_email_carries_the_car_park_contact_and_policy_links(demo_world):
    skyline, carpark = Brand.objects.get(code="skyline"), CarPark.objects.get(code="MAN-T2")
    # made without a brand (so no job is queued for a running worker to race us), then given its brand
    booking = web_booking(skyline, carpark, brand_now=False)
    Booking.objects.filter(pk=booking.pk).update(brand=skyline, source=Booking.Source.WEB)
    deliver_confirmation(booking)
    body = mail.outbox[0].body
    base = "http://skyline.parkgate.test:8000"  # the demo world's default base URL, on Skyline's own host
    for link in ("/manage/", "/carparks/MAN-T2/", *POLICIES):
        assert f"{base}{link}" in body, link
    assert re.search(r"https://www\.openstreetmap\.org/search\?query=\S+", body)
    assert carpark.address.splitlines()[0] in body and carpark.opening_hours in body
    assert "help@skyline.parkgate.test" in body and skyline.support_phone in body
    assert "https://localhost" not in body
