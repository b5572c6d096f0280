"""Staff forms for lane controllers, permits and the block list (the admin's). They validate what staff type; the
writes go through apps.access.services."""

from django import forms

from apps.access.models import BlockedPlate, Device, Permit
from apps.core import plates

PLATE_HELP = "As written, e.g. AB12 CDE: its normal form and look-alike key are derived from it (device-protocol.md 3)."


def clean_plate(value: str) -> str:
    if not plates.normalise(value or ""):
        raise forms.ValidationError("A plate has letters or digits, e.g. AB12 CDE.")
    return value.strip()


class DeviceAdminForm(forms.ModelForm):
    """A device's car park (when it is created), lanes, name and vendor mapping. Its lanes must be its car park's."""

    class Meta:
        model = Device
        fields = ("name", "carpark", "lanes", "settings")

    def clean_settings(self):
        value = self.cleaned_data.get("settings")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError('The settings are a JSON object, e.g. {"cameras": {"cam1": "N-IN"}}.')
        return value

    def clean(self):
        cleaned = super().clean()
        carpark = cleaned.get("carpark") if "carpark" in self.fields else self.instance.carpark
        lanes = cleaned.get("lanes")
        if carpark is not None and lanes:
            foreign = sorted(str(lane) for lane in lanes if lane.carpark_id != carpark.id)
            if foreign:
                self.add_error(
                    "lanes",
                    f"A device serves lanes of its own car park ({carpark.code}) only; not {', '.join(foreign)}.",
                )
        return cleaned


class PermitAdminForm(forms.ModelForm):
    class Meta:
        model = Permit
        fields = ("carpark", "holder", "plate_raw", "valid_from", "valid_until")
        labels = {"plate_raw": "Plate"}
        help_texts = {"plate_raw": PLATE_HELP}

    def clean_plate_raw(self):
        return clean_plate(self.cleaned_data.get("plate_raw"))

    def clean(self):
        cleaned = super().clean()
        valid_from, valid_until = cleaned.get("valid_from"), cleaned.get("valid_until")
        if valid_from and valid_until and valid_until <= valid_from:
            self.add_error("valid_until", "A permit's end must be after its start.")
        return cleaned


class BlockedPlateAdminForm(forms.ModelForm):
    class Meta:
        model = BlockedPlate
        fields = ("carpark", "plate_raw", "reason")
        labels = {"plate_raw": "Plate"}
        help_texts = {"plate_raw": PLATE_HELP}

    def clean_plate_raw(self):
        return clean_plate(self.cleaned_data.get("plate_raw"))
