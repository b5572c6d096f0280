"""The ground app's part of others' units of work (apps.bookings.signals), and its files' clean-up."""

from django.db.models.signals import post_delete
from django.dispatch import receiver

from apps.bookings import signals
from apps.ground import tasks
from apps.ground.models import ConditionPhoto


def on_booking_created(sender, booking, **kwargs) -> None:
    tasks.tasks_for_booking(booking_id=booking.pk, new=True)


def on_booking_changed(sender, booking, **kwargs) -> None:
    """A booking made, amended or cancelled: its meet-and-greet tasks follow, in the same transaction (a few rows)."""
    tasks.tasks_for_booking(booking_id=booking.pk)


@receiver(post_delete, sender=ConditionPhoto, dispatch_uid="ground.photo_file_delete")
def photo_file_delete(sender, instance: ConditionPhoto, **kwargs) -> None:
    """A photo erased with its booking takes its file with it (the storage may be local or S3-compatible)."""
    if instance.image:
        instance.image.storage.delete(instance.image.name)


def connect() -> None:
    signals.booking_created.connect(on_booking_created, dispatch_uid="ground.booking_created")
    signals.booking_amended.connect(on_booking_changed, dispatch_uid="ground.booking_amended")
    signals.booking_cancelled.connect(on_booking_changed, dispatch_uid="ground.booking_cancelled")
