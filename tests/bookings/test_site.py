"""The customer websites through Django's test client: host routing, a brand's own car parks and bookings,
form messages, CSRF, the manage form's rate limit, and the confirmation email job. Views run their services on
worker threads (other connections), so these tests commit (transaction=True)."""

import re
import secrets

import pytest
from django.core import mail
from django.test import Client

from apps.bookings import services
from apps.bookings.models import Booking, BookingChange
from tests.bookings.conftest import deliver_confirmation, hidden_inputs, local

pytestmark = pytest.mark.django_db(transaction=True)

STAY = {"carpark": "TST-1", "arrival": "2027-01-10T08:00", "departure": "2027-01-12T18:00"}


def site(host: str = "tb.parkgate.test", **kwargs) -> Client:
    return Client(HTTP_HOST=host, **kwargs)


def book_form(**overrides) -> dict:
    return {
        **STAY,
        "name": "Jane Smith",
        "email": "jane@example.com",
        "phone": "07700 900123",
        "registration": "ab12 cde",
        "form_token": secrets.token_urlsafe(),  # a new quote page's form each time
        **overrides,
    }


def pay_demo(client: Client, booked) -> None:
    """The payment step of a website booking (the demo provider: no card is charged)."""
    page = client.get(booked["Location"])
    paid = client.post(f"{booked['Location']}pay/demo", {**hidden_inputs(page.text), "outcome": "pay"})
    assert paid.status_code == 302, paid.text[:300]


def web_booking(world, **overrides) -> Booking:
    fields = {
        "carpark": world.carpark,
        "arrival": local("2027-01-10T08:00"),
        "departure": local("2027-01-12T18:00"),
        "customer_name": "Jane Smith",
        "customer_email": "jane@example.com",
        "vehicles": [{"registration": "AB12CDE"}],
        "source": Booking.Source.WEB,
        "brand": world.brand,
    }
    return services.booking_create(**{**fields, **overrides})


def test_host_picks_the_brand_and_its_car_parks(committed_world):
    home = site().get("/")
    assert home.status_code == 200 and "Test Brand" in home.text
    assert re.findall(r'<option value="([A-Z0-9-]+)"', home.text) == ["TST-1", "TINY"]
    other = site("ob.parkgate.test").get("/")
    assert re.findall(r'<option value="([A-Z0-9-]+)"', other.text) == ["TINY"]
    for path in ("/", "/quote/", "/manage/"):
        assert site("nobody.parkgate.test").get(path).status_code == 404


def test_quote_shows_the_brands_price_and_spaces(committed_world):
    page = site().get("/quote/", STAY, follow=True)
    assert page.status_code == 200
    assert 'data-price="36.00"' in page.text  # the brand's own 12.00 a day, 3 days
    assert 'data-spaces-left="50"' in page.text
    assert site("ob.parkgate.test").get("/quote/", STAY).status_code == 400  # not a car park it sells


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"arrival": "2027-03-28T01:30"}, "There is no 01:30 on Sun 28 Mar 2027: the clocks go forward an hour"),
        ({"arrival": "2027-10-31T01:30", "departure": "2027-11-02T10:00"}, "01:30 happens twice on Sun 31 Oct 2027"),
        ({"arrival": "2020-01-01T10:00"}, "The arrival must be in the future."),
        ({"departure": "2027-01-09T10:00"}, "The departure must be after the arrival."),
        ({"arrival": ""}, "Please enter the arrival date and time."),
        ({"carpark": "NOPE"}, "Please choose one of our car parks."),
    ],
)
def test_search_form_messages(committed_world, params, message):
    page = site().get("/quote/", {**STAY, **params})
    assert page.status_code == 400 and message in page.text


def test_book_and_see_the_confirmation(committed_world):
    client = site()
    client.get("/quote/", STAY)
    booked = client.post("/book/", book_form(registration_2="xy51abc", flight_outbound="ba0117"))
    assert booked.status_code == 302
    reference = booked["Location"].split("/")[-2]
    booking = Booking.objects.get(reference=reference)
    assert (booking.source, booking.brand, booking.price) == ("web", committed_world.brand, 36)
    assert list(booking.vehicles.values_list("registration", flat=True)) == ["AB12CDE", "XY51ABC"]
    assert booking.arrival == local("2027-01-10T08:00")  # entered in London time, stored in UTC
    page = client.get(booked["Location"])
    assert page.status_code == 200 and reference in page.text and "Sun 10 Jan 2027, 08:00" in page.text
    assert site().get(booked["Location"]).status_code == 404  # another browser has not proved anything
    pay_demo(client, booked)
    steps = list(BookingChange.objects.filter(booking=booking).order_by("at", "pk").values_list("action", "actor"))
    assert steps == [("created", "customer"), ("confirmed", "customer")]  # the history shows it paid
    changes = BookingChange.objects.get(booking=booking, action="confirmed").changes
    assert changes == [{"field": "status", "from": "pending_payment", "to": "confirmed"}]


def test_booking_form_messages(committed_world):
    page = site().post("/book/", book_form(name="", email="nope", registration="--"))
    assert page.status_code == 400
    for message in ("Please enter your name.", "Please enter a valid email.", "A registration has letters"):
        assert message in page.text
    assert not Booking.objects.exists()


def test_csrf_is_enforced(committed_world):
    assert site(enforce_csrf_checks=True).post("/book/", book_form()).status_code == 403
    assert site(enforce_csrf_checks=True).post("/manage/", {"reference": "PG-X", "email": "a@b.c"}).status_code == 403


def test_full_car_park_says_so(committed_world):
    tiny = {**STAY, "carpark": "TINY"}
    for n in range(2):
        assert site().post("/book/", book_form(**tiny, registration=f"AB{n}")).status_code == 302
    full = site().post("/book/", book_form(**tiny, registration="AB9"))
    assert full.status_code == 409 and "Sorry, we are full: Tiny Park is full on" in full.text
    assert "is full on those dates" in site().get("/quote/", tiny, follow=True).text


def test_manage_is_limited_to_the_brands_own_bookings(committed_world):
    booking = web_booking(committed_world)
    found = site().post("/manage/", {"reference": booking.reference.lower(), "email": "JANE@example.com"})
    assert found.status_code == 302 and found["Location"] == f"/manage/{booking.reference}/"
    other = site("ob.parkgate.test").post("/manage/", {"reference": booking.reference, "email": "jane@example.com"})
    assert other.status_code == 404 and "could not find a booking" in other.text
    wrong = site().post("/manage/", {"reference": booking.reference, "email": "eve@example.com"})
    assert wrong.status_code == 404


def test_manage_lookups_are_rate_limited(committed_world):
    client = site(REMOTE_ADDR="198.51.100.7")
    statuses = [client.post("/manage/", {"reference": "PG-AAAAAA", "email": "a@b.co"}).status_code for _ in range(11)]
    assert statuses == [404] * 10 + [429]
    assert "Too many attempts" in client.post("/manage/", {"reference": "x", "email": "a@b.co"}).text
    assert site(REMOTE_ADDR="198.51.100.8").post("/manage/", {"reference": "x", "email": "a@b.co"}).status_code == 404


def test_amend_and_cancel(committed_world):
    booking = web_booking(committed_world)
    client = site()
    client.post("/manage/", {"reference": booking.reference, "email": "jane@example.com"})
    amend = client.post(
        f"/manage/{booking.reference}/amend/",
        {"arrival": "2027-01-10T08:00", "departure": "2027-01-14T18:00", "registration": "AB12CDE"},
    )
    # dearer: the difference is paid first (the demo provider's step), then the change applies
    assert amend.status_code == 200 and "Pay the difference" in amend.text
    assert Booking.objects.get(pk=booking.pk).price == 36
    paid = client.post(f"/booked/{booking.reference}/pay/demo", {**hidden_inputs(amend.text), "outcome": "pay"})
    assert paid.status_code == 302 and paid["Location"] == f"/manage/{booking.reference}/?changed=1"
    booking.refresh_from_db()
    assert booking.departure == local("2027-01-14T18:00") and booking.price == 60  # 5 days at 12.00
    bad = client.post(f"/manage/{booking.reference}/amend/", {"arrival": "2027-01-10T08:00", "departure": "x"})
    assert bad.status_code == 400 and "Please enter the departure as a date and a time." in bad.text
    assert "is refunded to your card; cancellation is free until" in client.get(f"/manage/{booking.reference}/").text
    cancelled = client.post(f"/manage/{booking.reference}/cancel/")
    assert cancelled.status_code == 200  # and says what the terms above the button promised
    assert "Your booking has been cancelled and \u00a360.00 is refunded to your card." in cancelled.text
    assert Booking.objects.get(pk=booking.pk).status == "cancelled"


def test_confirmation_email_is_sent_once(committed_world):
    # made without a brand (so no job is queued for a running worker to race us), then given its brand
    booking = web_booking(committed_world, flight_outbound="BA0117", brand=None, source=Booking.Source.STAFF)
    Booking.objects.filter(pk=booking.pk).update(brand=committed_world.brand)
    deliver_confirmation(booking)
    deliver_confirmation(booking)  # arq may run a job twice
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["jane@example.com"] and booking.reference in message.subject
    assert "Sun 10 Jan 2027, 08:00" in message.body and "https://tb.parkgate.test/manage/" in message.body
    assert Booking.objects.get(pk=booking.pk).confirmation_sent_at is not None


# Local times at the car park (Europe/London) and how a customer must see them, summer and winter and across both
# clock changes of 2027 (28 Mar 01:00 GMT -> 02:00 BST; 31 Oct 02:00 BST -> 01:00 GMT).
LOCAL_STAYS = [
    ("2027-07-10T08:00", "2027-07-17T18:00", "Sat 10 Jul 2027, 08:00 BST", "Sat 17 Jul 2027, 18:00 BST"),
    ("2027-01-10T08:00", "2027-01-12T18:00", "Sun 10 Jan 2027, 08:00 GMT", "Tue 12 Jan 2027, 18:00 GMT"),
    ("2027-03-27T23:30", "2027-03-28T03:00", "Sat 27 Mar 2027, 23:30 GMT", "Sun 28 Mar 2027, 03:00 BST"),
    ("2027-10-31T00:30", "2027-10-31T03:00", "Sun 31 Oct 2027, 00:30 BST", "Sun 31 Oct 2027, 03:00 GMT"),
]


@pytest.mark.parametrize(("arrival", "departure", "shown_arrival", "shown_departure"), LOCAL_STAYS)
def test_pages_show_the_car_parks_local_time(committed_world, arrival, departure, shown_arrival, shown_departure):
    client, stay = site(), {**STAY, "arrival": arrival, "departure": departure}
    quote = client.get("/quote/", stay, follow=True)
    assert quote.status_code == 200 and shown_arrival in quote.text and shown_departure in quote.text
    assert f'value="{arrival}"' in quote.text  # the book form carries the time as entered
    booked = client.post("/book/", book_form(**stay))
    booking = Booking.objects.get(reference=booked["Location"].split("/")[-2])
    pay_demo(client, booked)
    assert (booking.arrival, booking.departure) == (local(arrival), local(departure))
    for path in (booked["Location"], f"/manage/{booking.reference}/"):
        page = client.get(path)
        assert shown_arrival in page.text and shown_departure in page.text, path
    manage = client.get(f"/manage/{booking.reference}/")
    assert f'value="{arrival}"' in manage.text and f'value="{departure}"' in manage.text  # the amend form


@pytest.mark.parametrize(("arrival", "departure", "shown_arrival", "shown_departure"), LOCAL_STAYS)
def test_the_email_shows_the_car_parks_local_time(committed_world, arrival, departure, shown_arrival, shown_departure):
    # without a brand first, so that no job is queued for a running worker to race us (as above)
    booking = web_booking(
        committed_world, arrival=local(arrival), departure=local(departure), brand=None, source=Booking.Source.STAFF
    )
    Booking.objects.filter(pk=booking.pk).update(brand=committed_world.brand)
    deliver_confirmation(booking)
    body = mail.outbox[0].body
    assert f"Arrival:    {shown_arrival}\n" in body and f"Departure:  {shown_departure}\n" in body


def test_one_booking_form_sent_again_makes_no_second_booking(committed_world):
    """A refresh or back-and-resubmit sends the quote page's form again: the first booking, not a second."""
    client = site()
    search = client.get("/quote/", STAY)  # the form's token goes in the quote page's address ...
    assert search.status_code == 302 and "form_token=" in search["Location"]
    quote, fetched_again = client.get(search["Location"]), client.get(search["Location"])
    assert hidden_inputs(quote.text)["form_token"] == hidden_inputs(fetched_again.text)["form_token"]  # ... to stay
    form = {**book_form(), **hidden_inputs(quote.text)}
    first, again = client.post("/book/", form), client.post("/book/", form)
    assert first.status_code == again.status_code == 302 and again["Location"] == first["Location"]
    assert Booking.objects.count() == 1
    # another customer's details on a used form do not reach that booking
    other = site().post("/book/", {**form, "email": "eve@example.com"})
    assert other.status_code == 400 and "already been used" in other.text and Booking.objects.count() == 1


def test_a_time_the_clocks_go_back_over_is_chosen_from_its_two_real_times(committed_world):
    stay = {**STAY, "arrival": "2027-10-31T01:30", "departure": "2027-11-02T10:00"}
    asked = site().get("/quote/", stay)
    assert asked.status_code == 400 and "please choose which" in asked.text and "UTC offset" not in asked.text
    assert re.findall(r'value="(\d)" id="id_arrival_fold_\d">\s*([^<]+?)\s*</label>', asked.text) == [
        ("0", "01:30 BST, before the clocks go back"),
        ("1", "01:30 GMT, an hour later"),
    ]
    client = site()
    quote = client.get("/quote/", {**stay, "arrival_fold": "1"}, follow=True)
    assert quote.status_code == 200 and "Sun 31 Oct 2027, 01:30 GMT" in quote.text
    booked = client.post("/book/", {**book_form(), **hidden_inputs(quote.text)})
    booking = Booking.objects.get(reference=booked["Location"].split("/")[-2])
    pay_demo(client, booked)
    assert booking.arrival.isoformat() == "2027-10-31T01:30:00+00:00"  # 01:30 GMT
    assert "Sun 31 Oct 2027, 01:30 GMT" in client.get(booked["Location"]).text
    # the amend form asks the same, the booking's own time chosen: sent as it is, the booking keeps its time
    manage = client.get(f"/manage/{booking.reference}/").text
    assert re.search(r'name="arrival_fold" value="1"[^>]*checked', manage)
    amend = {
        "arrival": "2027-10-31T01:30",
        "arrival_fold": "1",
        "departure": "2027-11-02T10:00",
        "registration": "XY51",
    }
    assert client.post(f"/manage/{booking.reference}/amend/", amend).status_code == 200
    booking.refresh_from_db()
    assert booking.arrival.isoformat() == "2027-10-31T01:30:00+00:00"
    assert list(booking.vehicles.values_list("registration", flat=True)) == ["XY51"]
