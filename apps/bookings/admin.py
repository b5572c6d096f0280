from django.contrib import admin

from apps.bookings.models import Booking, CapacityDay, Customer, Vehicle


class VehicleInline(admin.TabularInline):
    model = Vehicle
    extra = 0
    readonly_fields = ("registration", "lookalike_key")


@admin.register(Booking)
class BookingAdmin(admin.ModelAdmin):
    list_display = (
        "reference",
        "carpark",
        "agent",
        "agent_ref",
        "status",
        "arrival",
        "departure",
        "price",
        "overbooked",
        "needs_review",
    )
    # needs_review: an agent's price or commission beyond its terms (apps.bookings.terms); review_note says why
    list_filter = ("status", "source", "carpark", "agent", "overbooked", "needs_review")
    search_fields = ("reference", "agent_ref", "customer__name", "vehicles__registration")
    list_select_related = ("carpark", "agent")
    raw_id_fields = ("customer",)
    inlines = [VehicleInline]


admin.site.register(Customer)


@admin.register(CapacityDay)
class CapacityDayAdmin(admin.ModelAdmin):
    """Spaces held per car park and day. Read-only: the booking services keep these counts (apps.bookings.capacity)."""

    list_display = ("carpark", "date", "held")
    list_filter = ("carpark",)
    date_hierarchy = "date"
    ordering = ("carpark", "date")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
