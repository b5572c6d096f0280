from django.contrib import admin

from apps.agents.models import Agent, AgentMailbox, ApiToken


class MailboxInline(admin.TabularInline):
    model = AgentMailbox
    extra = 0


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "email_format", "commission_rate", "active")
    list_filter = ("active", "email_format")
    filter_horizontal = ("carparks",)
    exclude = ("smtp_password_hash",)
    inlines = [MailboxInline]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("agent", "name", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("agent", "prefix", "token_hash", "created_at", "last_used_at")
