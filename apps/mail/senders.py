"""Who may send mail for an agent (docs/email-ingress.md 1): source networks, envelope senders, SMTP AUTH.

Each restriction an agent has must be met (an agent with none accepts anyone, like the demo agents).
Pure functions over the agent's policy, so the SMTP edge decides without touching the database twice.
"""

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True)
class SenderPolicy:
    agent_id: int
    networks: tuple[str, ...] = ()  # CIDR blocks
    senders: tuple[str, ...] = ()  # "user@example.com" or "@example.com" / "example.com"
    smtp_username: str = ""  # when set, the client must have authenticated with this agent's SMTP password

    @property
    def restricted(self) -> bool:
        return bool(self.networks or self.senders or self.smtp_username)


def parse_lines(text: str) -> tuple[str, ...]:
    return tuple(line.strip().lower() for line in (text or "").replace(",", "\n").splitlines() if line.strip())


def network_allowed(policy: SenderPolicy, peer_ip: str) -> bool:
    if not policy.networks:
        return True
    try:
        ip = ipaddress.ip_address(peer_ip.split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    for block in policy.networks:
        try:
            if ip in ipaddress.ip_network(block, strict=False):
                return True
        except ValueError:
            continue  # a typo in one block must not open or close the others
    return False


def sender_allowed(policy: SenderPolicy, mail_from: str) -> bool:
    if not policy.senders:
        return True
    address = (mail_from or "").strip().strip("<>").lower()
    domain = address.rpartition("@")[2]
    if not address or not domain:
        return False
    for allowed in policy.senders:
        if "@" in allowed and not allowed.startswith("@"):
            if address == allowed:
                return True
        elif domain == allowed.lstrip("@"):
            return True
    return False


def auth_allowed(policy: SenderPolicy, authenticated_as: frozenset[int] | None) -> bool:
    """`authenticated_as`: the agents whose SMTP password the client gave (AUTH), None before AUTH."""
    return not policy.smtp_username or policy.agent_id in (authenticated_as or ())


def refusal(
    policy: SenderPolicy, *, peer_ip: str, mail_from: str, authenticated_as: frozenset[int] | None
) -> str | None:
    """None when the client may send for the agent, else a short reason (logged, never told to the client)."""
    if not network_allowed(policy, peer_ip):
        return f"client {peer_ip} outside the agent's networks"
    if not sender_allowed(policy, mail_from):
        return f"envelope sender {mail_from!r} not allowed"
    if not auth_allowed(policy, authenticated_as):
        return "SMTP AUTH as the agent's user required"
    return None
