from typing import Any

from apps.core.models import AuditLog


def audit_log_record(
    *,
    action: str,
    actor=None,
    actor_label: str = "",
    obj=None,
    carpark=None,
    data: dict[str, Any] | None = None,
) -> AuditLog:
    """Append an audit entry; call inside the caller's transaction so the entry commits with the action."""
    return AuditLog.objects.create(
        action=action,
        actor=actor,
        actor_label=actor_label or (actor.get_username() if actor else ""),
        object_type=obj._meta.label if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        carpark=carpark,
        data=data or {},
    )
