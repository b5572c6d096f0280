from django.contrib import admin, messages
from django.contrib.admin import ActionLocation
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from apps.access import services
from apps.access.forms import BlockedPlateAdminForm, DeviceAdminForm, PermitAdminForm
from apps.access.models import (
    Alert,
    BarrierCommand,
    BlockedPlate,
    Device,
    Permit,
    PlateRead,
    UnmappedRead,
    Visit,
)
from apps.carparks.models import Lane

# What the device and its connection report, and what only the services change (revocation: the action).
DEVICE_STATUS_FIELDS = (
    "revoked_at",
    "enrolled_at",
    "online",
    "last_seen_at",
    "serial",
    "model",
    "firmware",
    "barriers",
    "connection_id",
    "created_at",
)
DEVICE_EDITABLE_FIELDS = ("name", "carpark", "lanes", "settings")


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    """Devices are created through services.device_create (which issues the enrolment code) and revoked through
    services.device_revoke (which closes the live connection); their status fields are read-only."""

    form = DeviceAdminForm
    list_display = ("id", "name", "carpark", "online", "last_seen_at", "clock_offset_s", "enrolled_at", "revoked_at")
    list_filter = ("carpark", "online")
    list_select_related = ("carpark",)
    filter_horizontal = ("lanes",)
    actions = ["revoke", "new_enrolment_code"]

    def get_fields(self, request, obj=None):
        return DEVICE_EDITABLE_FIELDS if obj is None else DEVICE_EDITABLE_FIELDS + DEVICE_STATUS_FIELDS

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else ("carpark", *DEVICE_STATUS_FIELDS)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "lanes":
            kwargs["queryset"] = Lane.objects.select_related("carpark").order_by("carpark__code", "code")
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        lane_codes = [lane.code for lane in data["lanes"]]
        if change:
            services.device_update(
                device_id=str(obj.pk), name=data["name"], lane_codes=lane_codes, settings=data["settings"],
                actor=request.user,
            )  # fmt: skip
            obj.refresh_from_db()
            return
        device, issued = services.device_create(
            carpark_code=data["carpark"].code, lane_codes=lane_codes, name=data["name"], settings=data["settings"],
            actor=request.user,
        )  # fmt: skip
        obj.pk = device.pk
        obj.refresh_from_db()
        request._device_enrolment_code = issued

    def save_related(self, request, form, formsets, change):
        """Nothing: the services set the lanes (and a changed device's connection is told), there are no inlines."""

    def response_add(self, request, obj, post_url_continue=None):
        self.message_user(request, f"Device {obj} ({obj.pk}) was created.", messages.SUCCESS)
        self._show_code(request, obj, request._device_enrolment_code)
        return self._codes_response(request, back=reverse("admin:access_device_change", args=[obj.pk]))

    def _show_code(self, request, device, issued: services.EnrolmentCodeIssued):
        self.message_user(
            request,
            format_html(
                "Enrolment code for {} (one-time, valid {} h, until {}): <code>{}</code>",
                device,
                int(services.ENROLMENT_CODE_TTL.total_seconds() // 3600),
                timezone.localtime(issued.expires_at).strftime("%Y-%m-%d %H:%M %Z"),
                issued.code,
            ),
            messages.SUCCESS,
        )

    def _codes_response(self, request, *, back: str):
        context = {
            **self.admin_site.each_context(request),
            "title": "Enrolment codes",
            "opts": self.opts,
            "back": back,
        }
        return TemplateResponse(request, "admin/access/device/enrolment_codes.html", context)

    @admin.action(
        description="Revoke this device",
        description_plural="Revoke selected devices",
        permissions=["change"],
        location=[ActionLocation.CHANGE_LIST, ActionLocation.CHANGE_FORM],
    )
    def revoke(self, request, queryset):
        revoked, already = [], []
        for device in queryset.order_by("name", "pk"):
            (already if device.revoked_at else revoked).append(str(device))
            services.device_revoke(device_id=str(device.pk), actor=request.user)
        if revoked:
            self.message_user(
                request,
                f"Revoked {', '.join(revoked)}: the token no longer works and the live connection is closed (4401).",
                messages.SUCCESS,
            )
        if already:
            self.message_user(request, f"Already revoked: {', '.join(already)}.", messages.WARNING)

    @admin.action(
        description="New enrolment code",
        description_plural="New enrolment code for selected devices",
        permissions=["change"],
        location=[ActionLocation.CHANGE_LIST, ActionLocation.CHANGE_FORM],
    )
    def new_enrolment_code(self, request, queryset):
        issued, revoked = 0, []
        for device in queryset.order_by("name", "pk"):
            try:
                code = services.device_enrolment_code_issue(device_id=str(device.pk), actor=request.user)
            except services.DeviceRevoked:
                revoked.append(str(device))
                continue
            self._show_code(request, device, code)
            issued += 1
        if revoked:
            self.message_user(
                request, f"No code for revoked devices (create a new device): {', '.join(revoked)}.", messages.WARNING
            )
        if issued:
            return self._codes_response(request, back=reverse("admin:access_device_changelist"))
        return None


@admin.register(PlateRead)
class PlateReadAdmin(admin.ModelAdmin):
    list_display = ("received_at", "lane", "plate", "score", "action", "reason", "match", "booking")
    list_filter = ("carpark", "action", "reason")
    search_fields = ("plate", "read_id", "booking__reference")
    list_select_related = ("lane__carpark", "booking")

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(UnmappedRead)
class UnmappedReadAdmin(admin.ModelAdmin):
    """Reads of vendor cameras mapped to no lane: kept until the camera is mapped (dashboard, or `cameras` in the
    device's settings), then decided (apps/access/cameras.py)."""

    list_display = ("received_at", "device", "camera", "plate", "score", "captured_at", "decided_at")
    list_filter = ("device__carpark", "decided_at")
    search_fields = ("plate", "read_id", "camera")
    list_select_related = ("device",)

    def has_add_permission(self, request):
        return False

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


@admin.register(Permit)
class PermitAdmin(admin.ModelAdmin):
    """Staff type the plate as written; its normal form and look-alike key are derived (services.permit_save)."""

    form = PermitAdminForm
    list_display = ("plate", "holder", "carpark", "valid_from", "valid_until")
    list_filter = ("carpark",)
    list_select_related = ("carpark",)
    search_fields = ("plate", "holder")
    fields = ("carpark", "holder", "plate_raw", "plate", "lookalike_key", "valid_from", "valid_until", "created_at")
    readonly_fields = ("plate", "lookalike_key", "created_at")

    def save_model(self, request, obj, form, change):
        services.permit_save(permit=obj, actor=request.user)


@admin.register(BlockedPlate)
class BlockedPlateAdmin(admin.ModelAdmin):
    """Staff type the plate as written; its normal form and look-alike key are derived (services.blocked_plate_save)."""

    form = BlockedPlateAdminForm
    list_display = ("plate", "carpark", "reason", "created_at")
    list_filter = ("carpark",)
    list_select_related = ("carpark",)
    search_fields = ("plate", "reason")
    fields = ("carpark", "plate_raw", "plate", "lookalike_key", "reason", "created_at")
    readonly_fields = ("plate", "lookalike_key", "created_at")

    def save_model(self, request, obj, form, change):
        services.blocked_plate_save(blocked_plate=obj, actor=request.user)


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ("created_at", "carpark", "lane", "plate", "reason", "acknowledged_by", "acknowledged_at")
    list_filter = ("carpark", "reason")
    search_fields = ("plate",)
    raw_id_fields = ("read",)
