"""Customers' messages and the addresses that bounce, for staff: why a customer got no email, and lifting a
suppression once they have given a working address (deleting the row)."""

from django.contrib import admin

from apps.customers.models import BouncingAddress, CustomerMessage


@admin.register(BouncingAddress)
class BouncingAddressAdmin(admin.ModelAdmin):
    list_display = ("email", "event", "at", "detail")
    list_filter = ("event",)
    search_fields = ("email",)
    readonly_fields = ("email", "event", "detail", "message", "at")

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(CustomerMessage)
class CustomerMessageAdmin(admin.ModelAdmin):
    list_display = ("booking", "kind", "channel", "status", "recipient", "sent_at", "bounced_at")
    list_filter = ("status", "kind", "channel")
    search_fields = ("booking__reference", "recipient")
    list_select_related = ("booking",)
    readonly_fields = [f.name for f in CustomerMessage._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
