from django.contrib import admin

from apps.products.models import (
    ChannelAllocation,
    Extra,
    Fare,
    PriceRule,
    PriceSeason,
    Product,
    ProductText,
    PromoCode,
    StopSell,
)


class FareInline(admin.TabularInline):
    model = Fare
    extra = 0


class RuleInline(admin.TabularInline):
    model = PriceRule
    extra = 0


class AllocationInline(admin.TabularInline):
    model = ChannelAllocation
    extra = 0


class TextInline(admin.TabularInline):
    model = ProductText
    extra = 0


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("carpark", "code", "name", "spaces", "is_default")
    list_filter = ("carpark",)
    inlines = [FareInline, RuleInline, AllocationInline, TextInline]
    filter_horizontal = ("lanes",)


@admin.register(Extra)
class ExtraAdmin(admin.ModelAdmin):
    list_display = ("carpark", "code", "name", "price", "per", "stock_per_day")


@admin.register(PromoCode)
class PromoCodeAdmin(admin.ModelAdmin):
    list_display = ("code", "kind", "value", "brand", "product", "uses", "max_uses", "active")
    readonly_fields = ("uses",)  # counted by bookings only


@admin.register(PriceSeason)
class PriceSeasonAdmin(admin.ModelAdmin):
    """Read here; ranges are added on the staff's price page (/dashboard/prices/<car park>/), which refuses
    overlaps naming the other range."""

    list_display = ("product", "brand", "channel", "starts", "ends", "daily_rate", "minimum_charge", "bands")
    list_filter = ("product__carpark", "product")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(StopSell)
class StopSellAdmin(admin.ModelAdmin):
    list_display = ("product", "date", "channel")
    list_filter = ("product__carpark",)
