"""Admin for deliveries, attempts and breakers: read-only records, plus the
operator's actions (retry, close a breaker). No secret is shown anywhere."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from delivery import services
from delivery.models import Attempt, Breaker, Delivery


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AttemptInline(admin.TabularInline):
    model = Attempt
    fields = (
        "number",
        "at",
        "duration_ms",
        "status_code",
        "outcome",
        "error",
        "response_excerpt",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("number", "id")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(_ReadOnly):
    list_display = (
        "id",
        "event",
        "subscription",
        "client",
        "kind",
        "status",
        "attempts_count",
        "next_attempt_at",
    )
    list_filter = ("status", "kind")
    list_select_related = ("event", "subscription__client", "client")
    search_fields = ("=id", "=event__id", "=subscription__id")
    # Foreign keys as raw ids: a select of every event would not render.
    raw_id_fields = ("event", "subscription", "client")
    readonly_fields = (
        "id",
        "event",
        "subscription",
        "client",
        "kind",
        "status",
        "attempts_count",
        "backoff_step",
        "next_attempt_at",
        "lease_token",
        "expires_at",
        "created_at",
        "updated_at",
        "delivered_at",
        "last_status_code",
        "last_error",
    )
    inlines = [AttemptInline]
    actions = ["retry_deliveries"]
    show_full_result_count = False

    @admin.action(description="Retry now (fresh TTL)")
    def retry_deliveries(self, request: HttpRequest, queryset: QuerySet) -> None:
        retried, refused = 0, []
        for delivery_id in queryset.values_list("id", flat=True):
            try:
                services.retry_delivery(delivery_id=delivery_id)
                retried += 1
            except services.DeliveryNotRetriable as exc:
                refused.append(f"{delivery_id}: {exc}")
        self.message_user(request, f"{retried} deliveries will be sent again.")
        for reason in refused[:20]:
            self.message_user(request, reason, level=messages.WARNING)


@admin.register(Attempt)
class AttemptAdmin(_ReadOnly):
    list_display = ("delivery", "number", "at", "status_code", "outcome", "duration_ms")
    list_filter = ("outcome",)
    raw_id_fields = ("delivery",)
    readonly_fields = (
        "delivery",
        "number",
        "at",
        "duration_ms",
        "status_code",
        "outcome",
        "error",
        "response_excerpt",
    )
    show_full_result_count = False


@admin.register(Breaker)
class BreakerAdmin(admin.ModelAdmin):
    list_display = ("destination", "consecutive_failures", "open_until", "updated_at")
    search_fields = ("destination",)
    readonly_fields = ("destination", "updated_at")
    fields = ("destination", "consecutive_failures", "open_until", "updated_at")
    actions = ["close_breakers"]

    @admin.action(description="Close (forget failures)")
    def close_breakers(self, request: HttpRequest, queryset: QuerySet) -> None:
        closed = services.close_breakers(
            destinations=queryset.values_list("destination", flat=True)
        )
        self.message_user(request, f"{closed} breakers closed.")
