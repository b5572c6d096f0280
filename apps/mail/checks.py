"""`check --deploy` for the SMTP ingress: who may send mail for each agent (docs/email-ingress.md, Appendix A)."""

from django.conf import settings
from django.core.checks import Tags, Warning, register
from django.db import DatabaseError

from apps.mail import selectors

HOW = "docs/email-ingress.md, Appendix A"


@register(Tags.security, deploy=True)
def agents_restricted(app_configs, **kwargs):
    try:
        open_agents = selectors.agent_codes_open_to_anyone()
        auth_agents = selectors.agent_codes_requiring_smtp_auth()
    except DatabaseError:
        return []  # no database yet (fresh deploy before migrate): nothing to find
    warnings = [
        Warning(
            f"Agent '{code}' has no sender restriction: mail from anyone, from anywhere, creates and cancels its "
            "bookings.",
            hint="Restrict its source networks or envelope senders (admin), or require SMTP AUTH: "
            f"python manage.py set_agent_smtp_password --agent {code} ({HOW}).",
            id="parkgate.mail.W001",
        )
        for code in open_agents
    ]
    if auth_agents and not (settings.SMTP_TLS_CERT and settings.SMTP_TLS_KEY):
        warnings.append(
            Warning(
                f"Agents {', '.join(auth_agents)} require SMTP AUTH, which is offered only after STARTTLS, and "
                "STARTTLS is off: their mail is refused.",
                hint="Set SMTP_TLS_CERT and SMTP_TLS_KEY.",
                id="parkgate.mail.W002",
            )
        )
    return warnings
