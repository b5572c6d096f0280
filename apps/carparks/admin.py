from django.contrib import admin

from apps.carparks.models import Brand, BrandDomain, CarPark, Lane


class BrandDomainInline(admin.TabularInline):
    model = BrandDomain
    extra = 0


@admin.register(Brand)
class BrandAdmin(admin.ModelAdmin):
    list_display = ("code", "name")
    inlines = [BrandDomainInline]


class LaneInline(admin.TabularInline):
    model = Lane
    extra = 0


@admin.register(CarPark)
class CarParkAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "capacity", "timezone", "currency")
    filter_horizontal = ("brands",)
    inlines = [LaneInline]
