from urllib.parse import urlsplit

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet

from apps.carparks.models import Brand, BrandDomain, CarPark, Lane, Tariff, TariffBand


class BrandDomainFormSet(BaseInlineFormSet):
    def clean(self):
        """Links in emails start at the base URL: on a host that is none of the brand's, they would all be 404s."""
        super().clean()
        hosts = {
            form.cleaned_data["host"].lower()
            for form in self.forms
            if form.cleaned_data.get("host") and not form.cleaned_data.get("DELETE")
        }
        base_host = urlsplit(self.instance.base_url).hostname
        if self.instance.base_url and base_host not in hosts:
            raise ValidationError(f"The base URL's host {base_host} is none of the brand's domains.")


class BrandDomainInline(admin.TabularInline):
    model = BrandDomain
    formset = BrandDomainFormSet
    extra = 0


@admin.register(Brand)
class BrandAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "base_url", "language")
    inlines = [BrandDomainInline]


class LaneInline(admin.TabularInline):
    model = Lane
    extra = 0


@admin.register(CarPark)
class CarParkAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "capacity", "timezone", "currency")
    filter_horizontal = ("brands",)
    inlines = [LaneInline]


class TariffBandInline(admin.TabularInline):
    model = TariffBand
    extra = 0


@admin.register(Tariff)
class TariffAdmin(admin.ModelAdmin):
    """A car park's default tariff (no brand) and per-brand overrides; see apps.bookings.pricing for the rules."""

    list_display = ("carpark", "brand", "daily_rate", "minimum_charge")
    list_filter = ("carpark", "brand")
    list_select_related = ("carpark", "brand")
    inlines = [TariffBandInline]
