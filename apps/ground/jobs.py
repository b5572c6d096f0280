"""Work on the ground in the background: meet-and-greet returns at risk (tasks follow bookings through
apps.ground.receivers, in the booking's own transaction).

Every job takes ids (or nothing) and is idempotent: arq may run one twice."""

from apps.core.jobs import periodic
from apps.ground import tasks


@periodic("ground.returns_at_risk", minute=set(range(60)))
def returns_at_risk() -> None:
    """Every minute: a return with no driver 30 minutes before it is due alerts the car park's staff."""
    tasks.returns_at_risk_alert()
