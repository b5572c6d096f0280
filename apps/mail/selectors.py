from django.contrib.auth.hashers import check_password

from apps.agents.models import Agent, AgentMailbox
from apps.mail.models import InboundEmail
from apps.mail.senders import SenderPolicy, parse_lines


def sender_policy_for_mailbox(*, address: str) -> SenderPolicy | None:
    """The sender restrictions of the active agent that owns `address`, or None if no active agent does."""
    row = (
        AgentMailbox.objects.filter(address=address.strip().lower(), agent__active=True)
        .values_list("agent_id", "agent__allowed_networks", "agent__allowed_senders", "agent__smtp_username")
        .first()
    )
    if row is None:
        return None
    agent_id, networks, senders, username = row
    return SenderPolicy(
        agent_id=agent_id, networks=parse_lines(networks), senders=parse_lines(senders), smtp_username=username or ""
    )


def smtp_login_agent_ids(*, username: str, password: str) -> frozenset[int]:
    """The active agents with these SMTP credentials (the password checked against each one's hash); empty when
    none. Only these may be acted for: a user name two agents share does not make one's password the other's."""
    if not username or not password:
        return frozenset()
    rows = Agent.objects.filter(smtp_username=username, active=True).exclude(smtp_password_hash="")
    return frozenset(pk for pk, h in rows.values_list("pk", "smtp_password_hash") if check_password(password, h))


def email_raw_source(*, message_id: int) -> str | None:
    """The stored bytes of a message as text (for staff to read; shown escaped), or None once deleted."""
    raw = InboundEmail.objects.filter(pk=message_id).values_list("raw", flat=True).first()
    return None if raw is None else bytes(raw).decode("utf-8", errors="replace")


def agent_codes_open_to_anyone() -> list[str]:
    """Active agents with a mailbox and no sender restriction of any kind: anyone may send (and cancel) their
    bookings by email. An agent without a mailbox receives no mail, so it is not listed."""
    rows = (
        Agent.objects.filter(active=True, mailboxes__isnull=False)
        .distinct()
        .order_by("code")
        .values_list("code", "allowed_networks", "allowed_senders", "smtp_username")
    )
    return [
        code
        for code, networks, senders, username in rows
        if not SenderPolicy(
            agent_id=0, networks=parse_lines(networks), senders=parse_lines(senders), smtp_username=username or ""
        ).restricted
    ]


def agent_codes_requiring_smtp_auth() -> list[str]:
    return list(
        Agent.objects.filter(active=True).exclude(smtp_username="").order_by("code").values_list("code", flat=True)
    )
