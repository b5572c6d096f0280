from django.contrib import admin

from apps.payments.models import Payment, Refund, WebhookEvent


class RefundInline(admin.TabularInline):
    model = Refund
    extra = 0
    can_delete = False
    readonly_fields = ("amount", "reason", "status", "provider_refund_id", "attempts", "last_error", "requested_by")


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    """Read-only: payments change through apps.payments.services (the provider is the source of truth)."""

    list_display = ("booking", "purpose", "provider", "intent_id", "amount", "currency", "status", "created_at")
    list_filter = ("status", "purpose", "provider")
    search_fields = ("intent_id", "booking__reference")
    readonly_fields = [f.name for f in Payment._meta.fields]
    inlines = [RefundInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ("provider", "event_id", "type", "received_at", "applied_at")
    search_fields = ("event_id",)
    readonly_fields = ("provider", "event_id", "type", "payload", "received_at", "applied_at")

    def has_add_permission(self, request):
        return False
