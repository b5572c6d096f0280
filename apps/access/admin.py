from django.contrib import admin

from apps.access.models import Alert, BarrierCommand, BlockedPlate, Device, Permit, PlateRead, Visit


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "carpark", "online", "last_seen_at", "enrolled_at", "revoked_at")
    list_filter = ("carpark", "online")
    exclude = ("token_hash",)
    filter_horizontal = ("lanes",)


@admin.register(PlateRead)
class PlateReadAdmin(admin.ModelAdmin):
    list_display = ("received_at", "lane", "plate", "score", "action", "reason", "match", "booking")
    list_filter = ("carpark", "action", "reason")
    search_fields = ("plate", "read_id", "booking__reference")
    list_select_related = ("lane__carpark", "booking")

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(BarrierCommand)
class BarrierCommandAdmin(admin.ModelAdmin):
    list_display = ("command_id", "lane", "reason", "issued_by", "status", "detail", "created_at", "result_at")
    list_filter = ("status",)


@admin.register(Visit)
class VisitAdmin(admin.ModelAdmin):
    list_display = ("plate", "carpark", "entered_at", "exited_at", "booking", "permit", "overstay_minutes", "held_at")
    list_filter = ("carpark",)
    search_fields = ("plate", "booking__reference")
    raw_id_fields = ("entry_read", "exit_read", "booking", "permit")


admin.site.register(Permit)
admin.site.register(BlockedPlate)


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ("created_at", "carpark", "lane", "plate", "reason", "acknowledged_by", "acknowledged_at")
    list_filter = ("carpark", "reason")
    search_fields = ("plate",)
    raw_id_fields = ("read",)
