"""A staff member's signed-in sessions (django.contrib.sessions' table; customers' pages keep no sessions): listed
with where and when they signed in, and revocable one by one (the session row deleted, its dashboards closed)."""

import hashlib

from django.contrib.auth.signals import user_logged_in
from django.contrib.sessions.models import Session
from django.dispatch import receiver
from django.utils import timezone

from apps.core.events import publish_to_staff
from apps.core.services import audit_log_record


def _id(session_key: str) -> str:
    """What a page shows and a revoke names: not the key itself, which would let a reader take the session."""
    return hashlib.sha256(session_key.encode()).hexdigest()[:16]


@receiver(user_logged_in, dispatch_uid="staff.sessions.logged_in")
def _remember_where(sender, request, user, **kwargs) -> None:
    request.session["pg_signed_in_at"] = timezone.now().isoformat()
    request.session["pg_client"] = request.META.get("REMOTE_ADDR", "")[:45]
    request.session["pg_agent"] = request.META.get("HTTP_USER_AGENT", "")[:200]


def staff_sessions(*, user_id: int, current_key: str | None) -> list[dict]:
    out = []
    for session in Session.objects.filter(expire_date__gt=timezone.now()):
        data = session.get_decoded()
        if data.get("_auth_user_id") == str(user_id):
            out.append(
                {
                    "id": _id(session.session_key),
                    "current": session.session_key == current_key,
                    "signed_in_at": data.get("pg_signed_in_at", ""),
                    "client": data.get("pg_client", ""),
                    "agent": data.get("pg_agent", ""),
                    "expires": session.expire_date,
                }
            )
    return sorted(out, key=lambda s: s["signed_in_at"], reverse=True)


def staff_session_revoke(*, user, session_id: str) -> bool:
    """End one of the user's own sessions; False if it is not theirs or already gone."""
    for session in Session.objects.filter(expire_date__gt=timezone.now()):
        if _id(session.session_key) == session_id and session.get_decoded().get("_auth_user_id") == str(user.pk):
            session.delete()
            audit_log_record(action="staff.session_revoked", actor=user, data={"session": session_id})
            publish_to_staff(user_id=user.pk, kind="logout", data={"session": session.session_key})
            return True
    return False
