"""The customer websites' forms. Times are entered as wall-clock times at the car park and validated here
(a time skipped or repeated by a clock change gets a clear message, never a silent shift)."""

import secrets
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django import forms
from django.utils import dateformat, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.bookings.choices import MAX_QUANTITY
from apps.bookings.localtime import LocalTimeError, both_times, localize
from apps.bookings.templatetags.money import money
from apps.bookings.validation import MAX_STAY
from apps.core import plates

LOCAL_INPUT = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends


class LocalDateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs):
        super().__init__(format=LOCAL_INPUT, **kwargs)


def _local_field(label, required, invalid) -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label,
        input_formats=[LOCAL_INPUT, "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        widget=LocalDateTimeInput(),
        error_messages={"required": required, "invalid": invalid},
    )


def _fold_field() -> forms.TypedChoiceField:
    """Which of a time's two real times, on the night the clocks go back over it (0: the first, 1: an hour later)."""
    return forms.TypedChoiceField(
        choices=[(0, gettext_lazy("the first")), (1, gettext_lazy("an hour later"))],
        coerce=int,
        empty_value=None,
        required=False,
        widget=forms.RadioSelect,
    )


class StayForm(forms.Form):
    """Arrival and departure as local times at `tz`; cleaned_data gets `arrival_utc` and `departure_utc`.

    Initial values may be aware datetimes (shown as local times). A time the clocks go back over happens twice: the
    form offers both (`ambiguous` names the fields that need the choice, `<name>_fold` holds it); a time the clocks go
    forward over does not exist and gets a message saying so."""

    arrival = _local_field(
        gettext_lazy("Arrival"),
        gettext_lazy("Please enter the arrival date and time."),
        gettext_lazy("Please enter the arrival as a date and a time."),
    )
    arrival_fold = _fold_field()
    departure = _local_field(
        gettext_lazy("Departure"),
        gettext_lazy("Please enter the departure date and time."),
        gettext_lazy("Please enter the departure as a date and a time."),
    )
    departure_fold = _fold_field()

    def __init__(self, *args, tz: ZoneInfo, **kwargs):
        super().__init__(*args, **kwargs)
        self.tz = tz
        self.ambiguous: set[str] = set()
        for name in ("arrival", "departure"):
            value = self.initial.get(name)
            if isinstance(value, datetime) and timezone.is_aware(value):
                local = timezone.localtime(value, tz)
                self.initial[name], self.initial[f"{name}_fold"] = local.strftime(LOCAL_INPUT), local.fold
                self._offer_both_times(name, local.replace(tzinfo=None))

    def _offer_both_times(self, name: str, naive: datetime) -> bool:
        times = both_times(naive, self.tz)
        if times:
            self.ambiguous.add(name)
            field = self.fields[f"{name}_fold"]
            field.label = self[f"{name}_fold"].label = _("Which %(time)s?") % {
                "time": f"{naive:%H:%M}"
            }  # its BoundField is made while cleaning
            field.choices = [
                (0, _("%(time)s, before the clocks go back") % {"time": f"{times[0]:%H:%M %Z}"}),
                (1, _("%(time)s, an hour later") % {"time": f"{times[1]:%H:%M %Z}"}),
            ]
        return bool(times)

    def _utc(self, name: str) -> datetime | None:
        value = self.cleaned_data.get(name)
        if value is None:
            return None
        naive = timezone.make_naive(value, timezone.get_current_timezone()) if timezone.is_aware(value) else value
        naive = naive.replace(second=0, microsecond=0)
        fold = self.cleaned_data.get(f"{name}_fold")
        day = dateformat.format(naive, "D j M Y")
        if self._offer_both_times(name, naive) and fold is None:
            self.add_error(
                name,
                _("%(time)s happens twice on %(day)s, when the clocks go back an hour: please choose which.")
                % {"time": f"{naive:%H:%M}", "day": day},
            )
            return None
        try:
            return localize(naive, self.tz, fold=fold)
        except LocalTimeError:  # the clocks go forward over it (ambiguous ones are handled above)
            an_hour_on = naive.replace(tzinfo=self.tz).astimezone(UTC).astimezone(self.tz)
            self.add_error(
                name,
                _(
                    "There is no %(time)s on %(day)s: the clocks go forward an hour that night. "
                    "Please choose another time, such as %(later)s."
                )
                % {"time": f"{naive:%H:%M}", "day": day, "later": f"{an_hour_on:%H:%M}"},
            )
            return None

    def clean(self):
        cleaned = super().clean()
        arrival, departure = self._utc("arrival"), self._utc("departure")
        if arrival and departure:
            if arrival < timezone.now() - timedelta(minutes=5):
                self.add_error("arrival", _("The arrival must be in the future."))
            elif departure <= arrival:
                self.add_error("departure", _("The departure must be after the arrival."))
            elif departure - arrival > MAX_STAY:
                self.add_error("departure", _("We take bookings of up to %(days)s days.") % {"days": MAX_STAY.days})
        cleaned["arrival_utc"], cleaned["departure_utc"] = arrival, departure
        return cleaned


def new_form_token() -> str:
    return secrets.token_urlsafe(24)


class SearchForm(StayForm):
    carpark = forms.ChoiceField(
        label=gettext_lazy("Car park"),
        error_messages={"invalid_choice": gettext_lazy("Please choose one of our car parks.")},
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
        raise forms.ValidationError(_("A registration has letters and digits, e.g. AB12 CDE."))
    if len(plates.normalise(value)) > 10:
        raise forms.ValidationError(_("That registration is too long."))
    return value.strip()


class VehiclesMixin(forms.Form):
    registration = forms.CharField(
        label=gettext_lazy("Vehicle registration"),
        max_length=20,
        error_messages={"required": gettext_lazy("Please enter your vehicle's registration.")},
        widget=forms.TextInput(attrs={"autocapitalize": "characters", "autocomplete": "off"}),
    )
    registration_2 = forms.CharField(
        label=gettext_lazy("Second vehicle (optional)"),
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
            self.add_error("registration_2", _("This is the same registration as the first vehicle."))
        return cleaned


class BookForm(VehiclesMixin, StayForm):
    carpark = forms.CharField(widget=forms.HiddenInput)
    name = forms.CharField(
        label=gettext_lazy("Full name"),
        max_length=200,
        error_messages={"required": gettext_lazy("Please enter your name.")},
    )
    email = forms.EmailField(
        label=gettext_lazy("Email"),
        error_messages={
            "required": gettext_lazy("Please enter your email address."),
            "invalid": gettext_lazy("Please enter a valid email."),
        },
    )
    phone = forms.CharField(
        label=gettext_lazy("Mobile phone"),
        max_length=40,
        error_messages={"required": gettext_lazy("Please enter a phone number.")},
    )
    flight_outbound = forms.CharField(label=gettext_lazy("Outbound flight (optional)"), max_length=16, required=False)
    flight_return = forms.CharField(label=gettext_lazy("Return flight (optional)"), max_length=16, required=False)
    # The quote page's (new_form_token): the same form sent again gets the booking it made (services.booking_create)
    form_token = forms.CharField(
        widget=forms.HiddenInput,
        max_length=64,
        error_messages={"required": gettext_lazy("This form is out of date. Please search again.")},
    )
    field_order = ["carpark", "arrival", "departure", "name", "email", "phone", "registration", "registration_2"]


class ManageLookupForm(forms.Form):
    reference = forms.CharField(
        label=gettext_lazy("Booking reference"),
        max_length=16,
        error_messages={"required": gettext_lazy("Please enter your booking reference, e.g. PG-7K3M9Q.")},
        widget=forms.TextInput(attrs={"autocapitalize": "characters", "placeholder": "PG-XXXXXX"}),
    )
    email = forms.EmailField(
        label=gettext_lazy("Email used for the booking"),
        error_messages={
            "required": gettext_lazy("Please enter your email address."),
            "invalid": gettext_lazy("Please enter a valid email."),
        },
    )


class AmendForm(VehiclesMixin, StayForm):
    field_order = ["arrival", "departure", "registration", "registration_2", "flight_outbound", "flight_return"]
    # Changing flights is free (no re-pricing): they only tell the car park when to expect the car back.
    flight_outbound = forms.CharField(label=gettext_lazy("Outbound flight"), max_length=16, required=False)
    flight_return = forms.CharField(label=gettext_lazy("Return flight"), max_length=16, required=False)

    def __init__(self, *args, extras=(), currency: str = "", **kwargs):
        """`extras`: the car park's (apps.products Extra), one quantity field each (`extra_<CODE>`, as the quote
        page's); the booking's quantities come in `initial`."""
        super().__init__(*args, **kwargs)
        self.extras = list(extras)
        for x in self.extras:
            self.fields[f"extra_{x.code}"] = forms.IntegerField(
                label=f"{x.name} ({money(x.price, currency)} {x.get_per_display().lower()})",
                min_value=0,
                max_value=MAX_QUANTITY,
                required=False,
                initial=0,
                error_messages={
                    "max_value": _("At most %(n)s of one extra.") % {"n": MAX_QUANTITY},
                    "min_value": _("0 or more."),
                },
            )

    def extra_fields(self) -> list:
        return [self[f"extra_{x.code}"] for x in self.extras]

    def extras_wanted(self) -> dict[str, int]:
        """{code: quantity} the form asks for (quantities of 0 left out)."""
        wanted = {x.code: self.cleaned_data.get(f"extra_{x.code}") or 0 for x in self.extras}
        return {code: quantity for code, quantity in wanted.items() if quantity}
