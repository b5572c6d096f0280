from django.contrib import admin, messages

from apps.webhooks import services, signing
from apps.webhooks.models import Attempt, Delivery, Endpoint


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    list_display = ("id", "agent", "url", "active", "disabled_reason", "created_at")
    list_filter = ("active", "agent")
    search_fields = ("url", "agent__code")
    readonly_fields = ("secret_hint", "previous_secret_until", "disabled_at", "created_at")
    exclude = ("secret", "previous_secret")
    actions = ["rotate_secret", "send_test", "enable"]

    @admin.display(description="Secret")
    def secret_hint(self, obj):
        return f"{obj.secret[:10]}…" if obj.secret else "(made when saved; shown once)"

    def save_model(self, request, obj, form, change):
        if not obj.secret:
            obj.secret = signing.new_secret()
            messages.warning(request, f"Signing secret for {obj.url} (shown only now): {obj.secret}")
        super().save_model(request, obj, form, change)

    @admin.action(description="Rotate the signing secret (the old one signs too for a day)")
    def rotate_secret(self, request, queryset):
        for endpoint in queryset:
            endpoint = services.endpoint_rotate_secret(endpoint_id=endpoint.pk)
            messages.warning(request, f"New secret for {endpoint.url} (shown only now): {endpoint.secret}")

    @admin.action(description="Send a test event")
    def send_test(self, request, queryset):
        for endpoint in queryset:
            services.endpoint_send_test(endpoint=endpoint)
        messages.info(request, "Test events queued: see the deliveries.")

    @admin.action(description="Enable again")
    def enable(self, request, queryset):
        for endpoint in queryset:
            services.endpoint_enable(endpoint_id=endpoint.pk)


class AttemptInline(admin.TabularInline):
    model = Attempt
    extra = 0
    can_delete = False
    fields = ("at", "status_code", "latency_ms", "response_excerpt", "error")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("id", "endpoint", "event", "status", "attempts", "created_at", "delivered_at")
    list_filter = ("status", "endpoint")
    list_select_related = ("endpoint__agent", "event")
    readonly_fields = [f.name for f in Delivery._meta.fields]
    inlines = [AttemptInline]
    actions = ["replay"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Replay (send the event again)")
    def replay(self, request, queryset):
        for delivery in queryset:
            services.delivery_replay(delivery_id=delivery.pk)
        messages.info(request, f"{queryset.count()} replays queued.")
