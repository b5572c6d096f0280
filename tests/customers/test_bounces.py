"""Mail through a provider's API (django-anymail, Postmark here, its API a local HTTP stand-in) and its bounces:
Postmark's documented webhook payloads POSTed with basic auth to the served tracking URL mark the message and the
address; a later message to a hard-bounced address is suppressed, not sent."""

import uuid

import httpx
import pytest
from django.contrib.auth.models import Permission, User

from apps.bookings import services as bookings
from apps.carparks.models import Brand
from apps.customers.models import BouncingAddress, CustomerMessage
from apps.staff.services import staff_member_set
from tests.conftest import WEBHOOK_BASIC_AUTH
from tests.customers.conftest import web_booking
from tests.customers.sinks import JsonApi
from tests.dashboard.conftest import PASSWORD, login


class PostmarkApi(JsonApi):
    """Postmark's /email endpoint as documented: the server token header, a MessageID in the answer."""

    def answer(self, path, headers, body):
        assert path == "/email" and headers["X-Postmark-Server-Token"] == "pm-server-token"
        reply = {"To": body["To"], "SubmittedAt": "2026-12-07T11:00:00Z", "MessageID": str(uuid.uuid4())}
        return 200, reply | {"ErrorCode": 0, "Message": "OK"}


@pytest.fixture
def postmark(settings, demo_world):
    api = PostmarkApi()
    settings.MAILERS = {
        "default": {
            "BACKEND": "anymail.backends.postmark.EmailBackend",
            "OPTIONS": {"server_token": "pm-server-token", "api_url": api.url},
        }
    }
    settings.PARKGATE_JOBS_BACKEND = "inprocess"
    yield api
    api.stop()


def bounce(message_id: str, email: str, type_="HardBounce", type_code=1) -> dict:
    """Postmark's bounce webhook, as its documentation shows it."""
    return {
        "RecordType": "Bounce", "MessageStream": "outbound", "ID": 4323372036854775807, "Type": type_,
        "TypeCode": type_code, "Name": "Hard bounce", "Tag": "", "MessageID": message_id, "Metadata": {},
        "ServerID": 23, "Description": "The server was unable to deliver your message (ex: unknown user, mailbox "
        "not found).", "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": email, "From": "no-reply@parkgate.test", "BouncedAt": "2026-12-07T11:01:10.2735393-04:00",
        "DumpAvailable": True, "Inactive": True, "CanActivate": True, "Subject": "Booking confirmed", "Content": "",
    }  # fmt: skip


AUTH = tuple(WEBHOOK_BASIC_AUTH.split(":"))


def post(parkgate, payload: dict, auth=AUTH) -> int:
    url = f"{parkgate.http}/anymail/postmark/tracking/"
    return httpx.post(url, json=payload, auth=auth, timeout=10).status_code


def test_a_hard_bounce_marks_the_message_and_suppresses_later_mail(parkgate, postmark):
    brand = Brand.objects.get(code="parkgate-demo")
    booking = web_booking(brand, email="gone@example.com")
    (sent,) = postmark.received
    confirmation = CustomerMessage.objects.get(booking=booking, kind="confirmed")
    assert confirmation.status == "sent" and confirmation.provider_id == sent["MessageID"]  # Postmark's own id
    assert "Parkgate Demo" in sent["From"] and sent["To"] == "gone@example.com" and sent["HtmlBody"]

    assert post(parkgate, bounce(sent["MessageID"], "gone@example.com"), auth=("postmark", "wrong")) == 400
    assert not BouncingAddress.objects.exists()
    assert post(parkgate, bounce(sent["MessageID"], "gone@example.com")) == 200

    confirmation.refresh_from_db()
    assert confirmation.status == "bounced" and confirmation.bounced_at and "5.1.1" in confirmation.last_error
    assert BouncingAddress.objects.get(email="gone@example.com").message_id == confirmation.pk
    bookings.booking_amend(booking=booking, flight_outbound="BA0117")  # the next message is not sent
    amended = CustomerMessage.objects.get(booking=booking, kind="amended")
    assert amended.status == "suppressed" and len(postmark.received) == 1

    # staff looking the customer up see why they get no mail
    staff_member_set(username="priya", password=PASSWORD, carpark_codes=["LHR-T5"], role="operator")
    User.objects.get(username="priya").user_permissions.add(Permission.objects.get(codename="handle_subject_requests"))
    page = login(parkgate, "priya").get("/dashboard/customers/", params={"email": "gone@example.com"})
    assert "Email to gone@example.com is not sent: the mail provider reported it bounced" in page.text, page.text


def test_a_soft_bounce_is_recorded_and_a_complaint_suppresses(parkgate, postmark):
    brand = Brand.objects.get(code="parkgate-demo")
    full = web_booking(brand, email="full@example.com", plate="FU11 BOX")
    annoyed = web_booking(brand, email="annoyed@example.com", plate="AN12 OYD")
    full_id, annoyed_id = (m["MessageID"] for m in postmark.received)
    assert post(parkgate, bounce(full_id, "full@example.com", "SoftBounce", 4096)) == 200
    complaint = bounce(annoyed_id, "annoyed@example.com", "SpamComplaint", 512) | {"RecordType": "SpamComplaint"}
    assert post(parkgate, complaint) == 200

    statuses = dict(CustomerMessage.objects.filter(kind="confirmed").values_list("booking_id", "status"))
    assert statuses == {full.pk: "bounced", annoyed.pk: "complained"}
    assert list(BouncingAddress.objects.values_list("email", "event")) == [("annoyed@example.com", "complained")]
    bookings.booking_amend(booking=full, flight_outbound="BA0117")  # a full mailbox may take mail again
    assert CustomerMessage.objects.get(booking=full, kind="amended").status == "sent"
