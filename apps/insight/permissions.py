"""Who sees insight: supervisors and accountants of a car park see its reports and forecast; operators do not.

Every report and export is scoped to the car parks where the user holds one of `REPORT_ROLES` (superusers: all).
A car park outside that set answers 404, as for the dashboard: nobody learns another car park's figures.
"""

from apps.carparks.models import CarPark
from apps.staff.models import StaffAssignment

REPORT_ROLES = ("supervisor", "accountant")
#: Who may accept an overbooking allowance (it lets a channel sell beyond capacity).
ACCEPT_ROLES = ("supervisor",)


def carparks_for(*, user_id: int, is_superuser: bool, roles: tuple[str, ...] = REPORT_ROLES) -> list[CarPark]:
    """The car parks whose figures this user may see, by code."""
    carparks = CarPark.objects.order_by("code")
    if not is_superuser:
        carparks = carparks.filter(
            pk__in=StaffAssignment.objects.filter(user_id=user_id, user__is_active=True, role__in=roles).values(
                "carpark_id"
            )
        )
    return list(carparks)
