from django.contrib import admin

from apps.agents import services
from apps.agents.models import Agent, AgentMailbox, ApiToken


class MailboxInline(admin.TabularInline):
    model = AgentMailbox
    extra = 0


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "email_format", "commission_rate", "commission_tolerance", "price_policy", "active")
    list_filter = ("active", "email_format")
    filter_horizontal = ("carparks",)
    exclude = ("smtp_password_hash",)
    inlines = [MailboxInline]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are made with `manage.py create_api_token` (shown once); here they are listed and revoked."""

    list_display = ("agent", "name", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("agent", "revoked_at")
    readonly_fields = ("agent", "prefix", "token_hash", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        for token_id in queryset.filter(revoked_at__isnull=True).values_list("pk", flat=True):
            services.api_token_revoke(token_id=token_id)
