"""Permissions change under open dashboards: tell them, so they re-check and close if the right is gone
(docs/operations.md 6: logging out or losing a role closes the staff member's sockets)."""

from axes.signals import user_locked_out
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from apps.core.events import publish_to_staff
from apps.staff import services
from apps.staff.models import StaffAssignment


@receiver(user_logged_out, dispatch_uid="staff.logged_out")
def logged_out(sender, request, user, **kwargs) -> None:
    if user is not None:
        session = getattr(request, "session", None)
        publish_to_staff(user_id=user.pk, kind="logout", data={"session": getattr(session, "session_key", None)})


@receiver([post_save, post_delete], sender=StaffAssignment, dispatch_uid="staff.assignment_changed")
def assignment_changed(sender, instance: StaffAssignment, **kwargs) -> None:
    publish_to_staff(user_id=instance.user_id, kind="roles", data={})


@receiver(post_save, sender=get_user_model(), dispatch_uid="staff.user_changed")
def user_changed(sender, instance, created: bool, update_fields=None, **kwargs) -> None:
    """A deactivated user (or any change to them) is re-checked; a last_login bump on login is not news."""
    if not created and (update_fields is None or "last_login" not in update_fields):
        publish_to_staff(user_id=instance.pk, kind="roles", data={})


@receiver(user_locked_out, dispatch_uid="staff.login_locked_out")
def login_locked_out(sender, request, username, ip_address, **kwargs) -> None:
    """The project's audit log beside django-axes' own records (AccessAttempt, AccessFailureLog in the admin)."""
    services.login_lockout_audit(username=username, ip_address=ip_address)
