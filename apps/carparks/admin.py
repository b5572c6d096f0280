from django.contrib import admin

from apps.carparks.models import Brand, BrandDomain, CarPark, Lane, Tariff, TariffBand


class BrandDomainInline(admin.TabularInline):
    model = BrandDomain
    extra = 0


@admin.register(Brand)
class BrandAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "base_url")
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
