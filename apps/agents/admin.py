from django import forms
from django.contrib import admin
from django.contrib.auth.password_validation import validate_password

from apps.agents import services
from apps.agents.models import Agent, AgentMailbox, ApiToken


class MailboxInline(admin.TabularInline):
    model = AgentMailbox
    extra = 0


class AgentForm(forms.ModelForm):
    smtp_password = forms.CharField(
        label="New SMTP password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Requires SMTP AUTH for this agent's booking mail (as its SMTP username, its code when blank). "
        "Stored hashed; leave blank to keep the current one. Same as manage.py set_agent_smtp_password.",
    )

    def clean_smtp_password(self) -> str:
        password = self.cleaned_data["smtp_password"]
        if password:
            validate_password(password)
        return password


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    form = AgentForm
    list_display = (
        "code",
        "name",
        "email_format",
        "commission_rate",
        "commission_tolerance",
        "price_policy",
        "message_customers",
        "active",
    )
    list_filter = ("active", "email_format")
    filter_horizontal = ("carparks",)
    exclude = ("smtp_password_hash",)
    readonly_fields = ("smtp_password_is_set",)
    inlines = [MailboxInline]

    @admin.display(boolean=True, description="SMTP password set")
    def smtp_password_is_set(self, agent: Agent) -> bool:
        return bool(agent.smtp_password_hash)

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        if form.cleaned_data.get("smtp_password"):
            services.agent_smtp_password_set(agent_code=obj.code, password=form.cleaned_data["smtp_password"])


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
