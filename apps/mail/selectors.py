from apps.agents.models import AgentMailbox


def agent_id_for_mailbox(*, address: str) -> int | None:
    """The active agent that owns `address`, or None."""
    row = (
        AgentMailbox.objects.filter(address=address.strip().lower(), agent__active=True)
        .values_list("agent_id", flat=True)
        .first()
    )
    return row
