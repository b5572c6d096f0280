from datetime import date
from decimal import Decimal

from django import forms

from apps.accounting.models import Payment


class PaymentForm(forms.Form):
    kind = forms.ChoiceField(choices=Payment.Kind.choices, initial=Payment.Kind.PAYMENT)
    method = forms.ChoiceField(choices=Payment.Method.choices)
    amount = forms.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0.01"))
    external_reference = forms.CharField(max_length=100, required=False, help_text="Card slip, transfer reference...")


class MonthField(forms.Field):
    """YYYY-MM -> the month's first day."""

    def to_python(self, value):
        value = (value or "").strip()
        if not value:
            return None
        try:
            year, month = value[:7].split("-")
            return date(int(year), int(month), 1)
        except ValueError:
            raise forms.ValidationError("Enter a month as YYYY-MM.") from None


class InvoiceRunForm(forms.Form):
    month = MonthField()
    agent = forms.IntegerField(required=False, help_text="Leave empty for every agent")


class PeriodForm(forms.Form):
    month = MonthField()
    action = forms.ChoiceField(choices=[("close", "Close"), ("reopen", "Reopen")])


class RangeForm(forms.Form):
    start = forms.DateField(required=False)
    end = forms.DateField(required=False)
