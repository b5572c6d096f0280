from django.contrib import admin

from apps.ground import feed
from apps.ground.models import ConditionPhoto, FeedToken, KeyMove, KeyTag, Task


@admin.register(FeedToken)
class FeedTokenAdmin(admin.ModelAdmin):
    """Tokens are made with `manage.py create_feed_token` (shown once); here they are listed and revoked."""

    list_display = ("name", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("name", "prefix", "token_hash", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        for token_id in queryset.filter(revoked_at__isnull=True).values_list("pk", flat=True):
            feed.feed_token_revoke(token_id=token_id)


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    """Drivers and staff change tasks through their pages (audited); here they are only looked at."""

    list_display = ("booking", "kind", "state", "driver", "due_at", "carpark")
    list_filter = ("carpark", "kind", "state")
    search_fields = ("booking__reference",)

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(KeyTag)
class KeyTagAdmin(admin.ModelAdmin):
    list_display = ("number", "carpark", "slot", "driver", "booking", "moved_at")
    list_filter = ("carpark",)

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # moves go through apps.ground.keys, which audits them


@admin.register(KeyMove)
class KeyMoveAdmin(admin.ModelAdmin):
    list_display = ("tag", "from_holder", "to_holder", "actor", "task", "at")

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ConditionPhoto)
class ConditionPhotoAdmin(admin.ModelAdmin):
    list_display = ("task", "angle", "width", "height", "taken_by", "created_at")

    def has_change_permission(self, request, obj=None) -> bool:
        return False
