"""`GET /metrics`: Prometheus text from every process, behind a bearer token (docs/operations.md, Monitoring)."""

import asyncio
import smtplib

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from apps.agents.models import Agent, AgentMailbox
from tests.clients import LaneController
from tests.conftest import METRICS_TOKEN
from tests.lanes.conftest import build_world, make_booking, make_device
from tests.mail.messages import labels_text, message

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world(transactional_db):
    return build_world()


def scrape(server, token: str | None = METRICS_TOKEN) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{server.http}/metrics", headers=headers, timeout=10)


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_need_the_token_and_are_absent_without_one(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    settings.METRICS_TOKEN = "s3cret"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    answer = client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert answer.status_code == 200 and answer["Content-Type"].startswith("text/plain")


def test_decisions_smtp_replies_and_connections_are_counted(parkgate, world):
    make_booking(world["one"], "ME12 TRC")
    agent = Agent.objects.create(code="mtr", name="mtr", email_format="labels")
    mailbox = AgentMailbox.objects.create(agent=agent, address="mtr@bookings.parkgate.test").address
    device = make_device("TST1", ["IN", "OUT"])
    before = samples(scrape(parkgate).text)

    async def drive():
        async with LaneController(parkgate, device["token"], name="metrics") as lane:
            await lane.hello()
            during = samples(scrape(parkgate).text)
            decision = await lane.read("IN", "ME12TRC")
            return decision, during

    decision, during = asyncio.run(drive())
    assert (decision["action"], decision["reason"]) == ("open", "booking")
    with smtplib.SMTP("127.0.0.1", parkgate.smtp_port, timeout=15) as smtp:
        smtp.sendmail("a@agent.example", [mailbox], message(labels_text(ref="MTR1", carpark="TST1")).as_bytes())
    after = samples(scrape(parkgate).text)

    def grew(name: str, labels: dict, by: float = 1) -> bool:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0) >= by

    assert grew("parkgate_decision_seconds_count", {"reason": "booking"})
    assert grew("parkgate_plate_reads_total", {"action": "open"})
    assert grew("parkgate_smtp_replies_total", {"code": "250"}, by=4)  # MAIL, RCPT, DATA's 250 (+ EHLO's)
    assert grew("parkgate_smtp_replies_total", {"code": "354"})
    assert grew("parkgate_email_receipt_seconds_count", {})
    assert during[("parkgate_websocket_connections", (("kind", "device"),))] >= 1
    assert [key for key in after if key[0] == "parkgate_job_queue_depth"] == [("parkgate_job_queue_depth", ())]
