"""Input an attacker or a broken client sends the agents' API (issue #28): commissions and prices beyond the agent's
terms, times outside the bookable window, blank agent references, bodies over the upload limit. Every refusal is
JSON in the API's error shape and names the field."""

from decimal import Decimal

import pytest
from django.test import override_settings

from apps.agents.models import Agent
from apps.bookings.models import Booking
from tests.bookings.test_api import assert_error, body, client_for, patch, post

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def agent(committed_world):
    return client_for("tagent")


def with_terms(**terms):
    """tagent with these terms, and a client with a new token (a token's owner is kept for a few seconds)."""
    Agent.objects.filter(code="tagent").update(**terms)
    return client_for("tagent")


def assert_names(response, status: int, field: str):
    """A 422 in the API's shape whose detail points at `field`."""
    assert_error(response, status, "invalid")
    locs = [item["loc"][-1] for item in response.json()["detail"]]
    assert locs == [field], response.json()


# --- commission ----------------------------------------------------------------------------------------------


def test_the_commission_attack_is_refused_naming_commission(agent):
    response = post(agent, "/bookings", body(price="0.00", commission="99999999.99"))
    assert_names(response, 422, "commission")
    assert not Booking.objects.exists()


def test_commission_up_to_the_rate_and_tolerance_is_accepted_beyond_it_refused(agent, committed_world):
    # tagent: 15% contracted, 5 points of tolerance by default: at most 20.00 on 100.00
    assert post(agent, "/bookings", body(agent_ref="OK", price="100.00", commission="20.00")).status_code == 201
    assert_names(post(agent, "/bookings", body(agent_ref="NO", price="100.00", commission="20.01")), 422, "commission")
    agent = with_terms(commission_tolerance=Decimal("0"))
    assert_names(post(agent, "/bookings", body(agent_ref="NO", price="100.00", commission="15.01")), 422, "commission")
    agent = with_terms(commission_tolerance=Decimal("5"))  # never more than the price
    assert_names(post(agent, "/bookings", body(agent_ref="NO", price="100.00", commission="100.01")), 422, "commission")


def test_amending_to_a_commission_beyond_terms_is_refused(agent):
    ref = post(agent, "/bookings", body(price="100.00")).json()["reference"]
    assert_names(patch(agent, f"/bookings/{ref}", {"commission": "99999999.99"}), 422, "commission")
    assert_names(patch(agent, f"/bookings/{ref}", {"price": "0.00", "commission": "15.00"}), 422, "commission")
    assert Booking.objects.get(reference=ref).commission == Decimal("15.00")


# --- price against the tariff --------------------------------------------------------------------------------


def test_a_price_far_from_the_tariff_follows_the_agents_policy(committed_world):
    # TST-1 2026-12-01..08 costs 95.00 by the tariff; tagent's tolerance is set to 20% either way
    agent = with_terms(price_tolerance=Decimal("0.20"), price_policy="refuse")
    assert_names(post(agent, "/bookings", body(agent_ref="LOW", price="75.99")), 422, "price")
    assert_names(post(agent, "/bookings", body(agent_ref="HIGH", price="114.01")), 422, "price")
    near = post(agent, "/bookings", body(agent_ref="NEAR", price="76.00"))
    assert near.status_code == 201 and not Booking.objects.get(agent_ref="NEAR").needs_review

    agent = with_terms(price_policy="flag")
    assert post(agent, "/bookings", body(agent_ref="FLAG", price="0.00")).status_code == 201
    flagged = Booking.objects.get(agent_ref="FLAG")
    assert flagged.needs_review and flagged.price == Decimal("0.00") and "price" in flagged.review_note

    agent = with_terms(price_policy="accept")
    assert post(agent, "/bookings", body(agent_ref="ACCEPT", price="0.00")).status_code == 201
    assert not Booking.objects.get(agent_ref="ACCEPT").needs_review

    agent = with_terms(price_policy="refuse")
    assert_names(patch(agent, "/bookings/NEAR", {"price": "1.00"}), 422, "price")


# --- times outside the bookable window -----------------------------------------------------------------------

OUT_OF_RANGE = [
    ("9999-12-31T23:59:59", "invalid"),
    ("0001-01-01T00:00:00", "invalid"),
    ("1999-12-31T23:59:59Z", "invalid"),
    ("2040-01-01T10:00:00Z", "invalid"),
    ("9999-12-31T23:59:59-01:00", "invalid_datetime"),  # past datetime.max once in UTC: not a time at all
    ("0001-01-01T00:00:00+01:00", "invalid_datetime"),  # before datetime.min once in UTC
]


def assert_time_refused(response, field: str, error: str):
    if error == "invalid":
        assert_names(response, 422, field)
    else:  # an unreadable time, as for `soon`: the detail starts with the field's name
        assert_error(response, 422, error)
        assert response.json()["detail"].startswith(f"{field}: "), response.json()


@pytest.mark.parametrize(("value", "error"), OUT_OF_RANGE)
def test_times_outside_the_window_are_refused_naming_the_field(agent, value, error):
    assert_time_refused(post(agent, "/bookings", body(arrival=value, departure="2026-12-08T22:15")), "arrival", error)
    assert_time_refused(post(agent, "/bookings", body(arrival="2026-12-01T05:30", departure=value)), "departure", error)
    query = {"carpark": "TST-1", "arrival": value, "departure": "2026-12-08T22:15"}
    assert_time_refused(agent.get("/api/v1/availability", query), "arrival", error)
    ref = post(agent, "/bookings", body(agent_ref="WINDOW")).json()["reference"]
    assert_time_refused(patch(agent, f"/bookings/{ref}", {"arrival": value}), "arrival", error)
    assert_time_refused(patch(agent, f"/bookings/{ref}", {"departure": value}), "departure", error)
    assert Booking.objects.count() == 1


# --- agent references and bodies -----------------------------------------------------------------------------


def test_agent_ref_is_stripped_then_validated(agent):
    assert_names(post(agent, "/bookings", body(agent_ref="   ")), 422, "agent_ref")
    assert post(agent, "/bookings", body(agent_ref="  SPX-1 ")).json()["agent_ref"] == "SPX-1"
    assert not Booking.objects.filter(agent_ref=None).exists()


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_a_body_over_the_upload_limit_is_a_json_413(agent):
    big = body(customer={"name": "x" * 2000})
    assert_error(post(agent, "/bookings", big), 413, "too_large")
    ref_body = body(agent_ref="SMALL")
    ref = post(agent, "/bookings", ref_body).json()["reference"]
    assert_error(patch(agent, f"/bookings/{ref}", {"customer": {"name": "x" * 2000}}), 413, "too_large")
