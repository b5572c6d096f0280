"""The customer websites' forms. Times are entered as wall-clock times at the car park and validated here
(a time skipped or repeated by a clock change gets a clear message, never a silent shift)."""

import secrets
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django import forms
from django.utils import timezone

from apps.bookings.localtime import LocalTimeError, localize
from apps.bookings.services import MAX_STAY
from apps.core import plates

LOCAL_INPUT = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends


class LocalDateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs):
        super().__init__(format=LOCAL_INPUT, **kwargs)


def _local_field(label: str) -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label,
        input_formats=[LOCAL_INPUT, "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        widget=LocalDateTimeInput(),
        error_messages={
            "required": f"Please enter the {label.lower()} date and time.",
            "invalid": f"Please enter the {label.lower()} as a date and a time.",
        },
    )


class StayForm(forms.Form):
    """Arrival and departure as local times at `tz`; cleaned_data gets `arrival_utc` and `departure_utc`."""

    arrival = _local_field("Arrival")
    departure = _local_field("Departure")

    def __init__(self, *args, tz: ZoneInfo, **kwargs):
        super().__init__(*args, **kwargs)
        self.tz = tz

    def _utc(self, name: str) -> datetime | None:
        value = self.cleaned_data.get(name)
        if value is None:
            return None
        naive = timezone.make_naive(value, timezone.get_current_timezone()) if timezone.is_aware(value) else value
        try:
            return localize(naive.replace(second=0, microsecond=0), self.tz)
        except LocalTimeError as exc:
            self.add_error(name, str(exc) + ".")
            return None

    def clean(self):
        cleaned = super().clean()
        arrival, departure = self._utc("arrival"), self._utc("departure")
        if arrival and departure:
            if arrival < timezone.now() - timedelta(minutes=5):
                self.add_error("arrival", "The arrival must be in the future.")
            elif departure <= arrival:
                self.add_error("departure", "The departure must be after the arrival.")
            elif departure - arrival > MAX_STAY:
                self.add_error("departure", f"We take bookings of up to {MAX_STAY.days} days.")
        cleaned["arrival_utc"], cleaned["departure_utc"] = arrival, departure
        return cleaned


def new_form_token() -> str:
    return secrets.token_urlsafe(24)


class SearchForm(StayForm):
    carpark = forms.ChoiceField(
        label="Car park", error_messages={"invalid_choice": "Please choose one of our car parks."}
    )
    form_token = forms.CharField(max_length=64, required=False)  # in a quote page's address: see views.quote
    field_order = ["carpark", "arrival", "departure"]

    def __init__(self, *args, carparks: list, tz_of: dict[str, ZoneInfo], **kwargs):
        self.tz_of = tz_of
        data = args[0] if args else kwargs.get("data")
        code = (data or {}).get("carpark") or (carparks[0].code if carparks else "")
        super().__init__(*args, tz=tz_of.get(code, ZoneInfo("UTC")), **kwargs)
        self.fields["carpark"].choices = [(c.code, c.name) for c in carparks]


def _registration(value: str) -> str:
    if value and not plates.normalise(value):
        raise forms.ValidationError("A registration has letters and digits, e.g. AB12 CDE.")
    if len(plates.normalise(value)) > 10:
        raise forms.ValidationError("That registration is too long.")
    return value.strip()


class VehiclesMixin(forms.Form):
    registration = forms.CharField(
        label="Vehicle registration",
        max_length=20,
        error_messages={"required": "Please enter your vehicle's registration."},
        widget=forms.TextInput(attrs={"autocapitalize": "characters", "autocomplete": "off"}),
    )
    registration_2 = forms.CharField(
        label="Second vehicle (optional)",
        max_length=20,
        required=False,
        widget=forms.TextInput(attrs={"autocapitalize": "characters", "autocomplete": "off"}),
    )

    def clean_registration(self):
        return _registration(self.cleaned_data["registration"])

    def clean_registration_2(self):
        return _registration(self.cleaned_data["registration_2"])

    def vehicles(self) -> list[dict]:
        regs = [self.cleaned_data.get("registration", ""), self.cleaned_data.get("registration_2", "")]
        return [{"registration": r} for r in regs if r]

    def clean(self):
        cleaned = super().clean()
        first, second = cleaned.get("registration"), cleaned.get("registration_2")
        if first and second and plates.normalise(first) == plates.normalise(second):
            self.add_error("registration_2", "This is the same registration as the first vehicle.")
        return cleaned


class BookForm(VehiclesMixin, StayForm):
    carpark = forms.CharField(widget=forms.HiddenInput)
    name = forms.CharField(label="Full name", max_length=200, error_messages={"required": "Please enter your name."})
    email = forms.EmailField(
        label="Email",
        error_messages={"required": "Please enter your email address.", "invalid": "Please enter a valid email."},
    )
    phone = forms.CharField(
        label="Mobile phone", max_length=40, error_messages={"required": "Please enter a phone number."}
    )
    flight_outbound = forms.CharField(label="Outbound flight (optional)", max_length=16, required=False)
    flight_return = forms.CharField(label="Return flight (optional)", max_length=16, required=False)
    # The quote page's (new_form_token): the same form sent again gets the booking it made (services.booking_create)
    form_token = forms.CharField(
        widget=forms.HiddenInput,
        max_length=64,
        error_messages={"required": "This form is out of date. Please search again."},
    )
    field_order = ["carpark", "arrival", "departure", "name", "email", "phone", "registration", "registration_2"]


class ManageLookupForm(forms.Form):
    reference = forms.CharField(
        label="Booking reference",
        max_length=16,
        error_messages={"required": "Please enter your booking reference, e.g. PG-7K3M9Q."},
        widget=forms.TextInput(attrs={"autocapitalize": "characters", "placeholder": "PG-XXXXXX"}),
    )
    email = forms.EmailField(
        label="Email used for the booking",
        error_messages={"required": "Please enter your email address.", "invalid": "Please enter a valid email."},
    )


class AmendForm(VehiclesMixin, StayForm):
    field_order = ["arrival", "departure", "registration", "registration_2"]
