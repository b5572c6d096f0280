from django.db.models import Count, Q

from apps.carparks.models import CarPark
from apps.staff.models import StaffAssignment


def carpark_ids_for_user(*, user_id: int, roles: tuple[str, ...] = ("operator", "supervisor")) -> list[int]:
    """Car parks whose operations this staff member may watch."""
    return list(
        StaffAssignment.objects.filter(user_id=user_id, role__in=roles)
        .values_list("carpark_id", flat=True)
        .order_by("carpark__code")
    )


def carpark_tiles(*, carpark_ids: list[int]) -> list[dict]:
    """The dashboard snapshot: one tile per car park, with its occupancy (open visits)."""
    rows = (
        CarPark.objects.filter(pk__in=carpark_ids)
        .annotate(occupancy=Count("visits", filter=Q(visits__exited_at__isnull=True)))
        .order_by("code")
        .values("id", "code", "name", "capacity", "occupancy")
    )
    return list(rows)
