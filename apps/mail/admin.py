from django.contrib import admin

from apps.mail.models import InboundEmail


@admin.register(InboundEmail)
class InboundEmailAdmin(admin.ModelAdmin):
    list_display = ("id", "received_at", "agent", "subject", "status", "size")
    list_filter = ("status", "agent")
    search_fields = ("subject", "message_id", "mail_from")
    exclude = ("raw",)
    readonly_fields = [f.name for f in InboundEmail._meta.fields if f.name != "raw"]
