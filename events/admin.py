from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from events.models import Event, EventType
from events.selectors import list_event_types
from events.services import RESERVED_TYPE


@admin.register(EventType)
class EventTypeAdmin(admin.ModelAdmin):
    list_display = ["name", "terminal", "subtypes", "description"]
    list_filter = ["terminal"]
    search_fields = ["name", "description"]
    fields = ["name", "subtypes", "terminal", "description"]


class EventTypeFilter(admin.SimpleListFilter):
    """Filter by type from the catalogue: DISTINCT over every event is too slow."""

    title = "type"
    parameter_name = "type"

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin
    ) -> list[tuple[str, str]]:
        names = [event_type.name for event_type in list_event_types()]
        return [(name, name) for name in [*names, RESERVED_TYPE]]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value():
            return queryset.filter(type=self.value())
        return queryset


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    """Read-only: events are written by publishing, and their log must not change."""

    list_display = [
        "id",
        "type",
        "subtype",
        "tenant",
        "publisher",
        "resource_id",
        "created_at",
    ]
    list_select_related = ["tenant", "publisher"]
    list_filter = [EventTypeFilter, "tenant"]
    # Exact matches, served by indexes: never a LIKE over every event.
    search_fields = ["=id", "=type", "=resource_id"]
    date_hierarchy = "created_at"
    # Counting every event on each page view gets slow on a large table.
    show_full_result_count = False
    fields = [
        "id",
        "type",
        "subtype",
        "tenant",
        "publisher",
        "idempotency_key",
        "resource_id",
        "resource_url",
        "user_id",
        "payload",
        "occurred_at",
        "created_at",
    ]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: Any | None = None
    ) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: Any | None = None
    ) -> bool:
        return False
