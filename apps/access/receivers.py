"""Keeping lane controllers current as the rest of Parkgate changes (connected in AccessConfig.ready).

Receivers run inside the sender's transaction and do no I/O themselves: they enqueue a job or publish an event,
both of which happen only after commit.
"""

from django.db.models.signals import post_delete, post_save

from apps.access import services
from apps.access.models import BlockedPlate, Permit
from apps.bookings import signals as booking_signals
from apps.carparks.models import CarPark
from apps.core.jobs import enqueue_coalesced


def refresh_allowlist_soon(carpark_id: int) -> None:
    """Rebuilding a car park's list reads all its current bookings: a burst of changes (an agent's CSV, the API
    under load) must not queue one rebuild each. At most one a second per car park, seeing the whole burst."""
    enqueue_coalesced("access.allowlist_refresh", key=str(carpark_id), carpark_id=carpark_id)


def booking_changed(sender, booking, **kwargs) -> None:
    """A booking was created, amended or cancelled: its car park's offline allow-list may change (spec 5)."""
    refresh_allowlist_soon(booking.carpark_id)


def plates_changed(sender, instance, **kwargs) -> None:
    """A permit or blocked plate was saved or deleted: the allow-list or block list changes."""
    refresh_allowlist_soon(instance.carpark_id)


def carpark_saved(sender, instance, created, update_fields=None, **kwargs) -> None:
    """Staff may have changed lane policies: connected controllers get a new `welcome` with the settings."""
    if not created:
        services.carpark_settings_changed(carpark_id=instance.id)


def connect() -> None:
    for name in ("booking_created", "booking_amended", "booking_cancelled"):
        getattr(booking_signals, name).connect(booking_changed, dispatch_uid=f"access.{name}")
    for model in (Permit, BlockedPlate):
        post_save.connect(plates_changed, sender=model, dispatch_uid=f"access.saved.{model.__name__}")
        post_delete.connect(plates_changed, sender=model, dispatch_uid=f"access.deleted.{model.__name__}")
    post_save.connect(carpark_saved, sender=CarPark, dispatch_uid="access.carpark_saved")
