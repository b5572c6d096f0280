"""Staff views in the admin: list and filter, the raw source shown as escaped text, the reprocess action."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password

from apps.agents.models import Agent
from apps.carparks.models import CarPark
from apps.mail.models import InboundEmail
from tests.mail.conftest import deliver
from tests.mail.messages import labels_text, message


@pytest.fixture
def staff_client(client, world):
    admin = get_user_model().objects.create_superuser("boss", "boss@parkgate.test", "pw-123456789")
    client.force_login(admin)
    return client


def test_list_filters_and_raw_source_is_escaped_never_rendered(staff_client, world):
    evil = message(labels_text(ref="<script>alert(1)</script>"), subject="=?utf-8?q?Booking_=C2=A3?=")
    email = deliver(world["skypark"], evil)
    assert email.subject == "Booking £"
    listing = staff_client.get("/admin/mail/inboundemail/", {"status__exact": email.status})
    assert listing.status_code == 200 and f"/admin/mail/inboundemail/{email.id}/change/" in listing.text
    page = staff_client.get(f"/admin/mail/inboundemail/{email.id}/change/")
    assert page.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>alert(1)" not in page.text
    raw = staff_client.get(f"/admin/mail/inboundemail/{email.id}/raw/")
    assert raw["Content-Type"].startswith("text/plain") and raw["X-Content-Type-Options"] == "nosniff"
    assert b"Booking Reference: <script>" in raw.content


def test_reprocess_action_applies_a_failed_message_after_fixing_data(staff_client, world):
    email = deliver(world["skypark"], message(labels_text(carpark="NEW-1")))
    assert email.status == "failed"
    CarPark.objects.create(code="NEW-1", name="New", capacity=10).agents.add(world["skypark"])
    response = staff_client.post(
        "/admin/mail/inboundemail/", {"action": "reprocess", "_selected_action": [email.id]}, follow=True
    )
    assert response.status_code == 200 and f"#{email.id}: processed" in response.text
    assert InboundEmail.objects.get(pk=email.id).status == "processed"


def agent_form(code: str, **fields) -> dict:
    data = {
        "code": code, "name": code, "active": "on", "email_format": "labels", "commission_rate": "0",
        "commission_tolerance": "0.05", "price_policy": "flag", "price_tolerance": "0.5",
        "allowed_networks": "", "allowed_senders": "", "smtp_username": "", "error_report_address": "",
        "mailboxes-TOTAL_FORMS": "0", "mailboxes-INITIAL_FORMS": "0",
        "mailboxes-MIN_NUM_FORMS": "0", "mailboxes-MAX_NUM_FORMS": "1000",
    }  # fmt: skip
    return data | fields


def test_admin_sets_an_agents_smtp_password_stored_hashed_and_never_shown(staff_client, world):
    added = staff_client.post("/admin/agents/agent/add/", agent_form("adminset", smtp_password="admin-set-secret"))
    assert added.status_code == 302, added.content
    agent = Agent.objects.get(code="adminset")
    assert agent.smtp_username == "adminset" and check_password("admin-set-secret", agent.smtp_password_hash)
    page = staff_client.get(f"/admin/agents/agent/{agent.id}/change/")
    assert page.status_code == 200 and agent.smtp_password_hash not in page.text and "admin-set-secret" not in page.text
    kept = staff_client.post(
        f"/admin/agents/agent/{agent.id}/change/", agent_form("adminset", smtp_username="adminset")
    )
    assert kept.status_code == 302 and Agent.objects.get(pk=agent.pk).smtp_password_hash == agent.smtp_password_hash
    short = staff_client.post(f"/admin/agents/agent/{agent.id}/change/", agent_form("adminset", smtp_password="short"))
    assert short.status_code == 200 and "too short" in short.text
    assert Agent.objects.get(pk=agent.pk).smtp_password_hash == agent.smtp_password_hash
