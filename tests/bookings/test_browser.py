"""The customer websites in headless Chromium (Playwright, Debian's chromium) on a phone-sized screen: a full
booking on each brand's own domain (search -> quote -> book -> confirmation + email), then manage: amend, cancel.
Times in the car park's local time (a summer stay, the clock-change nights), and one booking per booking form however
often it is sent (back and resubmit, a double click; and, over plain HTTP, two posts at the same moment).

Brand domains resolve to the test server with Chromium's --host-resolver-rules, so the Host header is the brand's.
"""

import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from django.db import connection
from django.utils import timezone
from playwright.sync_api import expect, sync_playwright

from apps.bookings.models import Booking
from apps.carparks.models import CarPark
from tests.bookings.conftest import LONDON, hidden_inputs
from tests.support import ARTIFACTS, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--host-resolver-rules=MAP *.parkgate.test 127.0.0.1",
]
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def chromium(demo_world):
    """Per test, and set up after the database: Playwright's sync API keeps an event loop running in this thread,
    which Django's ORM refuses to run beside (the test reads the database through `db()` instead)."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def db(func):
    """Run an ORM read on a thread of its own (no event loop there); its connection is closed afterwards."""

    def run():
        try:
            return func()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"bookings-{name}.png"), full_page=True)


def local_input(days_ahead: int, hour: int) -> str:
    day = (timezone.now().astimezone(LONDON) + timedelta(days=days_ahead)).date()
    return f"{day.isoformat()}T{hour:02d}:00"


@pytest.mark.parametrize(
    ("host", "brand", "carpark", "price"),
    [
        ("demo.parkgate.test", "Parkgate Demo", "LHR-T5", "£55.00"),  # 4 days: 3 x 15.00 + 10.00
        ("skyline.parkgate.test", "Skyline Parking", "LHR-T5", "£50.50"),  # the brand's 13.50 a day, then 10.00
        ("skyline.parkgate.test", "Skyline Parking", "MAN-T2", "£36.00"),  # a car park only Skyline sells
    ],
)
def test_book_amend_and_cancel_on_the_brands_domain(parkgate, demo_world, chromium, host, brand, carpark, price):
    site = f"http://{host}:{parkgate.http_port}"
    name = f"{host.split('.')[0]}-{carpark}"
    context = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="en-GB")
    page = context.new_page()

    page.goto(f"{site}/")
    expect(page.locator(".site-header .name")).to_have_text(brand)
    options = page.locator("#id_carpark option").all_inner_texts()
    assert ("Manchester Terminal 2" in options) == (brand == "Skyline Parking")  # a brand sells only its own
    # a mistake first: departure before arrival gets a clear message
    page.select_option("#id_carpark", carpark)
    page.fill("#id_arrival", local_input(30, 8))
    page.fill("#id_departure", local_input(29, 8))
    page.click("button[type=submit]")
    expect(page.locator(".errorlist")).to_contain_text("The departure must be after the arrival.")
    page.fill("#id_departure", local_input(33, 18))
    shot(page, f"{name}-1-search")
    page.click("button[type=submit]")

    expect(page.locator(".price")).to_have_text(price)
    spaces = int(page.locator("[data-spaces-left]").get_attribute("data-spaces-left"))
    assert spaces > 0
    page.click("form[action='/book/'] button[type=submit]")  # empty form: messages, nothing booked
    expect(page.locator(".errorlist").first).to_contain_text("Please enter your name.")
    page.fill("#id_name", "Jane Smith")
    page.fill("#id_email", "jane@example.com")
    page.fill("#id_phone", "07700 900123")
    page.fill("#id_registration", "ab12 cde")
    page.fill("#id_flight_outbound", "BA0117")
    shot(page, f"{name}-2-quote")
    page.click("form[action='/book/'] button[type=submit]")
    page.click("#demo-pay #pay-button")  # the demo provider's payment step: no card is charged

    expect(page.locator("#confirmation h2")).to_have_text("Thank you, your parking is booked")
    reference = page.locator("#reference").inner_text()
    expect(page.locator("#vehicles")).to_have_text("AB12CDE")
    expect(page.locator("#price")).to_have_text(price)
    shot(page, f"{name}-3-confirmation")
    booking = db(lambda: Booking.objects.select_related("brand", "carpark").get(reference=reference))
    assert (booking.brand.name, booking.carpark.code, booking.source) == (brand, carpark, "web")
    assert booking.arrival.astimezone(LONDON).strftime("%Y-%m-%dT%H:%M") == local_input(30, 8)  # stored in UTC
    wait_for(
        lambda: db(Booking.objects.filter(reference=reference, confirmation_sent_at__isnull=False).exists),
        timeout=20,
        message="the confirmation email job",
    )

    # manage from a fresh browser: reference + email
    context.close()
    context = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="en-GB")
    page = context.new_page()
    page.goto(f"{site}/manage/")
    page.fill("#id_reference", reference)
    page.fill("#id_email", "someone-else@example.com")
    page.click("button[type=submit]")
    expect(page.locator(".alert")).to_contain_text("could not find a booking")
    page.fill("#id_email", "Jane@Example.com")
    page.click("button[type=submit]")
    expect(page.locator("#reference")).to_have_text(reference)
    page.fill("#id_departure", local_input(34, 18))
    page.fill("#id_registration_2", "xy51 abc")
    page.click("form[action$='/amend/'] button[type=submit]")
    page.click("#demo-pay #pay-button")  # dearer: the difference is paid first (demo provider)
    expect(page.locator("#notice")).to_have_text("Your booking has been changed.")
    expect(page.locator("#vehicles")).to_have_text("AB12CDE, XY51ABC")
    amended = db(lambda: Booking.objects.get(reference=reference))
    assert amended.price > booking.price and page.locator("#price").inner_text() == f"£{amended.price}"
    shot(page, f"{name}-4-amended")
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.click("form[action$='/cancel/'] button[type=submit]")
    expect(page.locator("#status")).to_have_text("Cancelled")
    assert asked == ["Cancel this booking?"]  # the site's script asked first (no inline handler: the CSP forbids it)
    shot(page, f"{name}-5-cancelled")
    assert db(lambda: Booking.objects.get(reference=reference).status) == "cancelled"
    context.close()


def test_a_brand_cannot_manage_another_brands_booking(parkgate, demo_world, chromium):
    page = chromium.new_page(viewport=PHONE)
    page.goto(
        f"http://demo.parkgate.test:{parkgate.http_port}/quote/?carpark=LHR-T5&arrival={local_input(40, 8)}"
        f"&departure={local_input(41, 8)}"
    )
    page.fill("#id_name", "Sam")
    page.fill("#id_email", "sam@example.com")
    page.fill("#id_phone", "0123")
    page.fill("#id_registration", "SA12MMM")
    page.click("form[action='/book/'] button[type=submit]")
    reference = page.locator("#reference").inner_text()
    page.goto(f"http://skyline.parkgate.test:{parkgate.http_port}/manage/")
    page.fill("#id_reference", reference)
    page.fill("#id_email", "sam@example.com")
    page.click("button[type=submit]")
    expect(page.locator(".alert")).to_contain_text("could not find a booking")
    response = page.goto(f"http://skyline.parkgate.test:{parkgate.http_port}/manage/{reference}/")
    assert response.status == 404
    assert page.goto(f"http://nobody.parkgate.test:{parkgate.http_port}/").status == 404
    page.close()


def sent_email(parkgate, reference: str) -> str:
    """The confirmation email for `reference` as the worker sent it (the console mail backend writes to its log)."""
    log = parkgate.processes[-1].log()
    start = log.index(f"booking {reference} confirmed")
    return log[start : log.index("\n\n", log.index("Departure:", start))]


def search_on_the_home_page(parkgate, chromium, arrival: str, departure: str):
    """A phone on the demo brand's home page, LHR-T5's stay searched; the page, on what the search answered."""
    page = chromium.new_page(viewport=PHONE, locale="en-GB")
    page.goto(f"http://demo.parkgate.test:{parkgate.http_port}/")
    page.select_option("#id_carpark", "LHR-T5")
    page.fill("#id_arrival", arrival)
    page.fill("#id_departure", departure)
    page.click("button[type=submit]")
    return page


def test_a_summer_stay_is_shown_in_the_car_parks_local_time(parkgate, demo_world, chromium):
    """10 Jul 2027 08:00 to 17 Jul 18:00 in London is 07:00Z to 17:00Z: every page and the email say 08:00 BST."""
    page = search_on_the_home_page(parkgate, chromium, "2027-07-10T08:00", "2027-07-17T18:00")
    expect(page.locator("#quote")).to_contain_text("Sat 10 Jul 2027, 08:00 BST")
    expect(page.locator("#quote")).to_contain_text("Sat 17 Jul 2027, 18:00 BST")
    shot(page, "summer-1-quote")
    page.fill("#id_name", "Sam Summer")
    page.fill("#id_email", "sam@example.com")
    page.fill("#id_phone", "07700 900456")
    page.fill("#id_registration", "SU27 MMR")
    page.click("form[action='/book/'] button[type=submit]")
    page.click("#demo-pay #pay-button")  # the demo provider's payment step: no card is charged
    expect(page.locator("#arrival")).to_have_text("Sat 10 Jul 2027, 08:00 BST")
    expect(page.locator("#departure")).to_have_text("Sat 17 Jul 2027, 18:00 BST")
    reference = page.locator("#reference").inner_text()
    shot(page, "summer-2-confirmation")
    booking = db(lambda: Booking.objects.get(reference=reference))
    assert (booking.arrival.isoformat(), booking.departure.isoformat()) == (
        "2027-07-10T07:00:00+00:00",
        "2027-07-17T17:00:00+00:00",
    )

    page.click("text=View or change this booking")
    expect(page.locator("#arrival")).to_have_text("Sat 10 Jul 2027, 08:00 BST")
    expect(page.locator("#departure")).to_have_text("Sat 17 Jul 2027, 18:00 BST")
    expect(page.locator("#id_arrival")).to_have_value("2027-07-10T08:00")  # the amend form agrees
    expect(page.locator("#id_departure")).to_have_value("2027-07-17T18:00")
    shot(page, "summer-3-manage")

    wait_for(lambda: f"booking {reference} confirmed" in parkgate.processes[-1].log(), timeout=20, message="the email")
    email = sent_email(parkgate, reference)
    assert "Arrival:    Sat 10 Jul 2027, 08:00 BST" in email and "Departure:  Sat 17 Jul 2027, 18:00 BST" in email
    page.close()


def test_back_and_resubmit_and_a_double_click_make_one_booking_each(parkgate, demo_world, chromium):
    name = f"Dee Double {uuid.uuid4().hex[:6]}"
    page = chromium.new_page(viewport=PHONE)
    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" and r.url.endswith("/book/") else None)
    submit = page.locator("form[action='/book/'] button[type=submit]")

    def fill_in_a_quote(days_ahead: int) -> None:
        page.goto(
            f"http://demo.parkgate.test:{parkgate.http_port}/quote/?carpark=LHR-T5"
            f"&arrival={local_input(days_ahead, 8)}&departure={local_input(days_ahead + 2, 8)}"
        )
        page.fill("#id_name", name)
        page.fill("#id_email", "dee@example.com")
        page.fill("#id_phone", "0123")
        page.fill("#id_registration", "DD12 DBL")

    # booked; the confirmation reloaded (a page of its own: nothing is sent again); back to the form; sent again
    fill_in_a_quote(50)
    submit.click()
    reference = page.locator("#reference").inner_text()  # on its payment step
    page.reload()
    page.go_back()  # the browser fetches the form's page again and puts back what was typed, but for the registration
    expect(page.locator("#id_name")).to_have_value(name)
    page.fill("#id_registration", "DD12 DBL")
    submit.click()
    expect(page.locator("#reference")).to_have_text(reference)  # the same booking again
    page.click("#demo-pay #pay-button")  # the demo provider's payment step: no card is charged
    expect(page.locator("#confirmation h2")).to_have_text("Thank you, your parking is booked")
    assert len(posts) == 2

    # a double click on a slow connection: the first sending reaches the server, its answer is slow to come back,
    # the customer clicks again, and the browser drops the first answer when it sends the second
    held, first_answer = [], []

    def slow_network(route):
        if held:
            route.continue_()
            return
        held.append(route)
        # sent from outside the browser, where demo.parkgate.test does not resolve: the same request, by address
        address = route.request.url.replace("demo.parkgate.test", "127.0.0.1")
        headers = {**route.request.headers, "host": f"demo.parkgate.test:{parkgate.http_port}"}
        first_answer.append(route.fetch(url=address, headers=headers, max_redirects=0))

    fill_in_a_quote(60)
    page.route("**/book/", slow_network)
    submit.scroll_into_view_if_needed()
    box = submit.bounding_box()
    at = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    with page.expect_request("**/book/"):
        page.mouse.click(*at)
    page.mouse.click(*at)  # the mouse, as a person's: a locator would wait for the first navigation to finish
    page.click("#demo-pay #pay-button")
    expect(page.locator("#confirmation h2")).to_have_text("Thank you, your parking is booked")
    second = page.locator("#reference").inner_text()
    shot(page, "double-submit")
    assert len(posts) == 4 and [a.status for a in first_answer] == [302]  # the form did reach the server twice

    made = db(lambda: sorted(Booking.objects.filter(customer__name=name).values_list("reference", flat=True)))
    assert made == sorted([reference, second])
    for ref in made:
        wait_for(lambda r=ref: f"booking {r} confirmed" in parkgate.processes[-1].log(), timeout=20, message="email")
    subjects = re.findall(r"^Subject: .*booking (\S+) confirmed", parkgate.processes[-1].log(), re.M)
    assert sorted(r for r in subjects if r in made) == made  # one email each


def test_two_concurrent_posts_of_one_form_make_one_booking(parkgate, demo_world):
    """An HTTP client sends one quote page's form twice at once, for the car park's last space: both answers are the
    one booking (the second neither books again nor finds the car park full of its twin)."""
    db(lambda: CarPark.objects.filter(code="MAN-T2").update(capacity=1))
    stay = {"carpark": "MAN-T2", "arrival": local_input(60, 9), "departure": local_input(61, 18)}
    with httpx.Client(base_url=parkgate.http, headers={"Host": "skyline.parkgate.test"}, timeout=60) as client:
        quote = client.get("/quote/", params=stay, follow_redirects=True)
        assert quote.status_code == 200, quote.text
        form = {
            **hidden_inputs(quote.text),
            "name": "Cora Current",
            "email": "cora@example.com",
            "phone": "0123",
            "registration": "CC12 RRT",
        }
        start = threading.Barrier(2)

        def send(_):
            start.wait()
            return client.post("/book/", data=form)

        with ThreadPoolExecutor(max_workers=2) as pool:
            answers = list(pool.map(send, range(2)))
    assert [a.status_code for a in answers] == [302, 302], [a.text[:300] for a in answers]
    assert answers[0].headers["location"] == answers[1].headers["location"]
    references = db(lambda: list(Booking.objects.filter(carpark__code="MAN-T2").values_list("reference", flat=True)))
    assert [f"/booked/{r}/" for r in references] == [answers[0].headers["location"]]


def test_the_clock_change_nights_in_the_browser(parkgate, demo_world, chromium):
    """28 Mar 2027 has no 01:30 in London (a clear message); 31 Oct 2027 has two, and the customer picks one."""
    page = search_on_the_home_page(parkgate, chromium, "2027-03-28T01:30", "2027-03-29T10:00")
    expect(page.locator(".errorlist")).to_have_text(
        "There is no 01:30 on Sun 28 Mar 2027: the clocks go forward an hour that night. "
        "Please choose another time, such as 02:30."
    )
    shot(page, "spring-forward")

    page.fill("#id_arrival", "2027-10-31T01:30")
    page.fill("#id_departure", "2027-11-01T10:00")
    page.click("button[type=submit]")
    expect(page.locator(".errorlist")).to_contain_text("01:30 happens twice on Sun 31 Oct 2027")
    expect(page.get_by_text("Which 01:30?")).to_be_visible()
    shot(page, "fall-back-1-choose")
    page.get_by_label("01:30 GMT, an hour later").check()
    page.click("button[type=submit]")
    expect(page.locator("#quote")).to_contain_text("Sun 31 Oct 2027, 01:30 GMT")
    page.fill("#id_name", "Otto Autumn")
    page.fill("#id_email", "otto@example.com")
    page.fill("#id_phone", "0123")
    page.fill("#id_registration", "OT27 MMN")
    page.click("form[action='/book/'] button[type=submit]")
    page.click("#demo-pay #pay-button")  # the demo provider's payment step: no card is charged
    expect(page.locator("#arrival")).to_have_text("Sun 31 Oct 2027, 01:30 GMT")
    reference = page.locator("#reference").inner_text()
    assert db(lambda: Booking.objects.get(reference=reference).arrival.isoformat()) == "2027-10-31T01:30:00+00:00"
    page.click("text=View or change this booking")
    expect(page.get_by_label("01:30 GMT, an hour later")).to_be_checked()  # the amend form keeps the choice
    shot(page, "fall-back-2-manage")
    wait_for(lambda: f"booking {reference} confirmed" in parkgate.processes[-1].log(), timeout=20, message="the email")
    assert "Arrival:    Sun 31 Oct 2027, 01:30 GMT" in sent_email(parkgate, reference)
    page.close()
