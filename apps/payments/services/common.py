"""What the card payment services share: their errors, and alerts for money that needs a person."""

from decimal import Decimal

from apps.access.models import Alert
from apps.access.selectors import alert_event_data
from apps.bookings.models import Booking
from apps.core import events

ZERO = Decimal("0.00")


class PaymentNotDue(Exception):
    """Nothing to pay: the booking is not waiting for a payment (paid already, cancelled, an agent's)."""


class RefundInvalid(ValueError):
    pass


def staff_alert(*, booking: Booking, reason: str, detail: str) -> Alert:
    """An alert on the car park's dashboard (after commit), for money that needs a person."""
    alert = Alert.objects.create(carpark=booking.carpark, reason=reason, detail=detail[:200])
    alert = Alert.objects.select_related("carpark", "lane", "acknowledged_by").get(pk=alert.pk)
    events.publish_to_carpark(carpark_id=booking.carpark_id, kind="alert", data=alert_event_data(alert))
    return alert
