"""From outside the process, against a real `serve` + `worker` on PostgreSQL and Redis (the `parkgate` fixture):
50 concurrent clients (API and website) race for the last 10 spaces; schemathesis fuzzes the OpenAPI contract."""

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from apps.agents.services import api_token_create
from apps.bookings import services
from apps.bookings.models import Booking, CapacityDay
from apps.bookings.pricing import stay_dates
from apps.carparks.models import CarPark, Tariff
from tests.bookings.conftest import LONDON, hidden_inputs, local

pytestmark = pytest.mark.django_db(transaction=True)

RACERS_API, RACERS_WEB, SPACES_LEFT = 25, 25, 10
MAX_EXAMPLES = 25  # per operation: bounded, so the suite stays fast


def _race_carpark(world) -> CarPark:
    """A car park with 12 spaces, 2 already taken on the race's days: 10 left."""
    race = CarPark.objects.create(code="RACE", name="Race Park", capacity=SPACES_LEFT + 2)
    race.brands.set([world.brand])
    world.agent.carparks.add(race)
    Tariff.objects.create(carpark=race, daily_rate="20.00")
    for n in range(2):
        services.booking_create(
            carpark=race,
            arrival=local("2027-02-01T08:00"),
            departure=local("2027-02-03T20:00"),
            customer_name=f"Early {n}",
            vehicles=[{"registration": f"EA{n}RLY"}],
            source=Booking.Source.STAFF,
        )
    return race


def _api_racer(server, token: str, n: int, start: threading.Barrier) -> tuple[str, int, str]:
    body = {
        "agent_ref": f"RACE-{n}",
        "carpark": "RACE",
        "arrival": "2027-02-02T09:00",
        "departure": "2027-02-03T18:00",
        "customer": {"name": f"Api Racer {n}"},
        "vehicles": [{"registration": f"AP{n:02d}API"}],
    }
    with httpx.Client(base_url=server.http, timeout=60, headers={"Authorization": f"Bearer {token}"}) as client:
        start.wait()
        response = client.post("/api/v1/bookings", json=body)
    payload = response.json()
    return "api", response.status_code, payload.get("error") or payload.get("reference")


def _web_racer(server, n: int, start: threading.Barrier) -> tuple[str, int, str]:
    host = {"Host": "tb.parkgate.test"}
    stay = {"carpark": "RACE", "arrival": "2027-02-02T09:00", "departure": "2027-02-03T18:00"}
    with httpx.Client(base_url=server.http, timeout=60, headers=host) as client:
        quote = client.get("/quote/", params=stay, follow_redirects=True)
        assert quote.status_code == 200, quote.text
        csrf = quote.cookies["csrftoken"]
        form = {
            **hidden_inputs(quote.text),
            "name": f"Web Racer {n}",
            "email": f"web{n}@example.com",
            "phone": "07700900000",
            "registration": f"WB{n:02d}WEB",
        }
        start.wait()
        response = client.post("/book/", data=form, headers={"Cookie": f"csrftoken={csrf}"})
    if response.status_code == 302:
        return "web", 302, response.headers["location"].split("/")[-2]
    full = "full" if re.search(r"Sorry, we are full: Race Park is full on", response.text) else response.text[:500]
    return "web", response.status_code, full


def test_fifty_clients_race_for_the_last_ten_spaces(parkgate, committed_world):
    race = _race_carpark(committed_world)
    token = api_token_create(agent_code="tagent")
    start = threading.Barrier(RACERS_API + RACERS_WEB)
    with ThreadPoolExecutor(max_workers=RACERS_API + RACERS_WEB) as pool:
        futures = [pool.submit(_api_racer, parkgate, token, n, start) for n in range(RACERS_API)]
        futures += [pool.submit(_web_racer, parkgate, n, start) for n in range(RACERS_WEB)]
        results = [f.result() for f in futures]

    winners = [r for r in results if r[1] in (201, 302)]
    losers = [r for r in results if r not in winners]
    assert len(winners) == SPACES_LEFT, results
    assert all(r in (("api", 409, "no_capacity"), ("web", 409, "full")) for r in losers), losers
    assert {kind for kind, *_ in winners} <= {"api", "web"}
    print(f"winners: {sorted(kind for kind, *_ in winners)}")

    # totals reconcile: every day's holds equal the bookings covering it, and no day is over capacity
    bookings = list(Booking.objects.filter(carpark=race).exclude(status="cancelled"))
    assert len(bookings) == SPACES_LEFT + 2
    assert sorted(b.reference for b in bookings if b.source in ("api", "web")) == sorted(r[2] for r in winners)
    expected: dict = {}
    for b in bookings:
        for d in stay_dates(arrival=b.arrival, departure=b.departure, tz=LONDON):
            expected[d] = expected.get(d, 0) + 1
    held = dict(CapacityDay.objects.filter(carpark=race).values_list("date", "held"))
    assert held == expected
    assert max(held.values()) == race.capacity and not any(b.overbooked for b in bookings)


# --- the OpenAPI contract, fuzzed --------------------------------------------------------------------------


def test_api_conforms_to_its_openapi_document(parkgate, demo_world):
    """Every operation, a bounded number of generated requests each (valid and invalid): no 5xx, and every
    answer's status, content type and body match the document."""
    schema = schemathesis.openapi.from_url(f"{parkgate.http}/api/v1/openapi.json")
    headers = {"Authorization": f"Bearer {api_token_create(agent_code='skypark')}"}
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    operations = [result.ok() for result in schema.get_all_operations()]
    statuses: list[int] = []
    assert len(operations) >= 6

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def exercise(case):
            response = case.call_and_validate(headers=headers, checks=checks)
            statuses.append(response.status_code)

        exercise()
    assert len(statuses) >= 3 * len(operations), statuses  # the fuzzing really ran
    print(f"schemathesis: {len(statuses)} requests, statuses {sorted(set(statuses))}")
