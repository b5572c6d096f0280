"""Staff views of inbound booking emails: list and filter, read the raw source (escaped, never rendered), reprocess."""

from django.contrib import admin, messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from apps.mail import selectors, services
from apps.mail.models import AgentBookingState, InboundEmail

RAW_PREVIEW_CHARS = 200_000


@admin.register(InboundEmail)
class InboundEmailAdmin(admin.ModelAdmin):
    list_display = ("id", "received_at", "agent", "mail_from", "subject", "status", "size")
    list_filter = ("status", "agent", "received_at")
    search_fields = ("subject", "message_id", "mail_from")
    date_hierarchy = "received_at"
    actions = ["reprocess"]
    exclude = ("raw", "result")
    readonly_fields = [f.name for f in InboundEmail._meta.fields if f.name not in ("raw", "result")] + [
        "results_table",
        "raw_source",
    ]

    def has_add_permission(self, request):
        return False

    def get_urls(self):
        custom = [path("<int:pk>/raw/", self.admin_site.admin_view(self.raw_view), name="mail_inboundemail_raw")]
        return custom + super().get_urls()

    def raw_view(self, request, pk: int):
        """The exact stored message as text/plain (browsers show it as text; nothing in it is rendered)."""
        email = get_object_or_404(InboundEmail, pk=pk)
        if not self.has_view_permission(request, email):
            raise Http404
        text = selectors.email_raw_source(message_id=pk)
        if text is None:
            raise Http404("the raw message was deleted after the retention period")
        response = HttpResponse(text, content_type="text/plain; charset=utf-8")
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'"
        return response

    @admin.display(description="Raw source")
    def raw_source(self, obj: InboundEmail):
        text = selectors.email_raw_source(message_id=obj.pk)
        if text is None:
            return "(deleted after the retention period)"
        link = reverse("admin:mail_inboundemail_raw", args=[obj.pk])
        more = " (truncated)" if len(text) > RAW_PREVIEW_CHARS else ""
        return format_html(
            '<a href="{}">Open as plain text</a>{}<pre style="white-space: pre-wrap; max-height: 40em; '
            'overflow: auto">{}</pre>',
            link,
            more,
            text[:RAW_PREVIEW_CHARS],
        )

    @admin.display(description="Result per booking / row")
    def results_table(self, obj: InboundEmail):
        if not obj.result:
            return "-"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    r.get("line") or r.get("row"),
                    r.get("action", ""),
                    r.get("agent_ref", ""),
                    r.get("result", ""),
                    r.get("booking", "") + (" (overbooked)" if r.get("overbooked") else ""),
                    r.get("error") or r.get("note") or "",
                )
                for r in obj.result
            ),
        )
        return format_html(
            "<table><tr><th>Row</th><th>Action</th><th>Agent ref</th><th>Result</th><th>Booking</th>"
            "<th>Detail</th></tr>{}</table>",
            rows,
        )

    @admin.action(description="Reprocess (after fixing data)")
    def reprocess(self, request, queryset):
        done, skipped = [], []
        for pk in queryset.values_list("pk", flat=True):
            status = services.inbound_email_reprocess(message_id=pk)
            (done if status else skipped).append(f"#{pk}: {status}" if status else f"#{pk}")
        if done:
            self.message_user(request, "Reprocessed " + ", ".join(done), messages.SUCCESS)
        if skipped:
            self.message_user(
                request, "Not reprocessable (duplicate, ignored, superseded or fully applied): " + ", ".join(skipped),
                messages.WARNING,
            )  # fmt: skip


@admin.register(AgentBookingState)
class AgentBookingStateAdmin(admin.ModelAdmin):
    list_display = ("agent", "agent_ref", "last_sent_at", "cancelled", "last_email", "updated_at")
    list_filter = ("agent", "cancelled")
    search_fields = ("agent_ref",)
    readonly_fields = ("agent", "agent_ref", "last_sent_at", "last_email", "cancelled", "updated_at")

    def has_add_permission(self, request):
        return False
