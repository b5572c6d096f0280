"""The key safe: each key tag has one holder at a time (a slot of the safe, or a driver), every move audited."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.ground.models import KeyMove, KeyTag, Task


class KeyRefused(Exception):
    """The move cannot be made (the message says why)."""


def _holder(tag: KeyTag) -> str:
    if tag.driver_id:
        return f"driver {tag.driver.get_username()}"
    return f"safe slot {tag.slot}" if tag.slot else "not issued"


def key_tag_move(*, carpark_id: int, number: str, actor, to_slot: str = "", to_driver=None,
                 task_id: int | None = None) -> KeyTag:  # fmt: skip
    """Move a key tag (made on first use) to a safe slot or to a driver; records who moved it from where to where.
    Moving it to where it already is changes nothing. `task_id`: the move is for that task, whose car the tag is."""
    number, to_slot = number.strip().upper(), to_slot.strip().upper()
    if not number:
        raise KeyRefused("give the key tag's number")
    if bool(to_slot) == (to_driver is not None):
        raise KeyRefused("a key goes to one holder: a safe slot or a driver")
    with transaction.atomic():
        task = Task.objects.filter(pk=task_id, carpark_id=carpark_id).first() if task_id else None
        booking_id = task.booking_id if task else None
        tag, _ = KeyTag.objects.select_for_update().get_or_create(carpark_id=carpark_id, number=number)
        if (tag.slot, tag.driver_id) == (to_slot, to_driver.pk if to_driver else None) and (
            booking_id is None or booking_id == tag.booking_id
        ):
            return tag
        before = _holder(tag) if tag.pk else "not issued"
        tag.slot, tag.driver, tag.moved_at = to_slot, to_driver, timezone.now()
        if booking_id is not None:
            tag.booking_id = booking_id
        try:
            with transaction.atomic():
                tag.save()
        except IntegrityError:
            raise KeyRefused("a key has one holder at a time") from None
        KeyMove.objects.create(tag=tag, from_holder=before, to_holder=_holder(tag), actor=actor, task=task)
        if task is not None and task.key_tag_id != tag.pk:
            Task.objects.filter(pk=task.pk).update(key_tag=tag)
        return tag
