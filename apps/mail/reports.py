"""The short error report mailed to an agent's error-report address when its message (or some rows) failed."""

from django.conf import settings
from django.core.mail import EmailMessage

from apps.mail.models import InboundEmail


def build_error_report(email: InboundEmail, address: str) -> EmailMessage:
    lines = [
        f"Parkgate could not apply all of your message received {email.received_at:%Y-%m-%d %H:%M} UTC.",
        f"Subject: {email.subject or '(none)'}",
        f"Message-ID: {email.message_id or '(none)'}",
        "",
    ]
    if email.status == InboundEmail.Status.FAILED:
        lines += ["Nothing in it was applied. Reason:", f"  {email.error}"]
    else:
        lines.append("These bookings were not applied:")
        for row in email.failed_rows:
            where = f"line {row['line']}" if "line" in row else f"record {row['row']}"
            lines.append(f"  {where}, reference {row.get('agent_ref') or '?'}: {row.get('error')}")
        lines.append("The other bookings in the message were applied.")
    lines += ["", "Please correct and send them again. (Automatic message; replies are not read.)"]
    return EmailMessage(
        subject=f"Parkgate: booking message not applied: {email.subject[:80]}".strip(),
        body="\n".join(lines),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[address],
        headers={"Auto-Submitted": "auto-generated", **({"In-Reply-To": email.message_id} if email.message_id else {})},
    )
