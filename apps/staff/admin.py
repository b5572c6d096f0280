from django.contrib import admin

from apps.staff.models import StaffAssignment


@admin.register(StaffAssignment)
class StaffAssignmentAdmin(admin.ModelAdmin):
    list_display = ("user", "carpark", "role")
    list_filter = ("role", "carpark")
