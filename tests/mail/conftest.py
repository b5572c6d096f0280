"""Fixtures for the mail tests: the demo world's agents (labels `skypark`, csv `holidayx`, fixed `legacy80`)."""

import pytest

from apps.agents.models import Agent
from apps.mail import services
from apps.mail.models import InboundEmail


@pytest.fixture
def world(db):
    from project.demo import seed_demo

    seed_demo()
    return {a.code: a for a in Agent.objects.all()}


def receive(agent: Agent, msg, *, peer: str = "127.0.0.1") -> InboundEmail:
    """Store a message as the SMTP handler does (raw bytes with CRLF line ends)."""
    raw = msg if isinstance(msg, bytes) else msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
    mailbox = agent.mailboxes.first().address
    message_id = services.inbound_email_receive(
        agent_id=agent.id, raw=raw, mail_from="bookings@agent.example", rcpt_tos=[mailbox], peer=peer
    )
    return InboundEmail.objects.get(pk=message_id)


def deliver(agent: Agent, msg) -> InboundEmail:
    """Receive and process (as the job would), returning the refreshed stored message."""
    email = receive(agent, msg)
    services.inbound_email_process(message_id=email.id)
    email.refresh_from_db()
    return email
