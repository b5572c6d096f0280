"""Condition photos: checked to be an image, turned upright, resized and re-encoded on the server (Pillow), and
stored through Django's storage API (local files in the demo, any S3-compatible store in production)."""

import io
import uuid

from django.core.files.base import ContentFile
from django.db import transaction
from PIL import Image, ImageOps, UnidentifiedImageError

from apps.ground.models import ConditionPhoto, Task

MAX_BYTES = 15 * 1024 * 1024  # a phone's full-size photo fits; anything larger is refused before it is decoded
LONG_SIDE = 1600  # enough to see a scratch, small enough for a phone's upload and a claim's file
TOO_BIG = f"That photo is over {MAX_BYTES // (1024 * 1024)} MB. Take it again at a lower size."
Image.MAX_IMAGE_PIXELS = 60_000_000  # a decompression bomb is refused, a 50-megapixel phone photo is not


class PhotoRefused(Exception):
    """Not a photo we keep (the message says why, for the driver)."""


def _resized_jpeg(data: bytes) -> tuple[bytes, tuple[int, int]]:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            image = ImageOps.exif_transpose(image)  # phones store portrait shots sideways with an EXIF turn
            image = image.convert("RGB")
            image.thumbnail((LONG_SIDE, LONG_SIDE))
            out = io.BytesIO()
            image.save(out, "JPEG", quality=82, optimize=True)  # re-encoded: no EXIF (location) is kept
            return out.getvalue(), image.size
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, ValueError):
        raise PhotoRefused("That file is not a photo we can read. Take the picture again.") from None


def condition_photo_add(*, task_id: int, angle: str, upload, driver) -> ConditionPhoto:
    """Keep one photo of the car from `angle` for the driver's task (a new one of an angle replaces the old)."""
    if angle not in ConditionPhoto.Angle.values:
        raise PhotoRefused(f"Choose which side of the car: {', '.join(ConditionPhoto.Angle.values)}.")
    if upload is None:
        raise PhotoRefused("Take or choose a photo first.")
    if upload.size > MAX_BYTES:
        raise PhotoRefused(TOO_BIG)
    data, (width, height) = _resized_jpeg(upload.read())
    with transaction.atomic():
        task = Task.objects.select_for_update().filter(pk=task_id).first()
        if task is None or task.driver_id != driver.pk:
            raise PhotoRefused("This task is not yours.")
        if task.state == Task.State.DONE:
            raise PhotoRefused("This task is finished.")
        for old in ConditionPhoto.objects.filter(task=task, angle=angle):
            old.delete()  # its file goes too (apps.ground.receivers)
        photo = ConditionPhoto(task=task, angle=angle, taken_by=driver, width=width, height=height)
        photo.image.save(
            f"{task.booking_id}-{task.kind}-{angle}-{uuid.uuid4().hex[:8]}.jpg", ContentFile(data), save=False
        )
        photo.save()
        return photo
