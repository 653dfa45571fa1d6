"""Admin for deliveries, attempts and breakers: read-only records, plus the
operator's actions (retry, replay, close a breaker), the deliveries of an
event on its page, and the dashboard's link on the admin index. No secret is
shown anywhere."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from delivery import services
from delivery.models import Attempt, Breaker, Delivery
from delivery.ops import replay
from events.admin import EventAdmin
from events.models import Event

# An event may have 10,000 deliveries: its page shows this many, and links
# to the delivery list filtered by the event for the rest.
EVENT_PAGE_DELIVERIES = 100

admin.site.index_template = "delivery/admin_index.html"


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AttemptInline(admin.TabularInline):
    model = Attempt
    fields = Attempt.RECORDED
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("number", "id")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class _OutcomeFilter(admin.SimpleListFilter):
    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin
    ) -> list[tuple[str, str]]:
        return list(Attempt.Outcome.choices)

    def _attempts(self) -> QuerySet[Attempt]:
        return Attempt.objects.filter(delivery=OuterRef("pk"))


class LastOutcomeFilter(_OutcomeFilter):
    """The outcome of the delivery's latest attempt (index attempt_delivery_number)."""

    title = "outcome of the last attempt"
    parameter_name = "last_outcome"

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[Delivery]
    ) -> QuerySet[Delivery]:
        if not self.value():
            return queryset
        last = self._attempts().order_by("-number", "-id").values("outcome")[:1]
        return queryset.alias(last_outcome=Subquery(last)).filter(
            last_outcome=self.value()
        )


class AnyOutcomeFilter(_OutcomeFilter):
    """Deliveries with at least one attempt of this outcome."""

    title = "outcome of any attempt"
    parameter_name = "any_outcome"

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[Delivery]
    ) -> QuerySet[Delivery]:
        if not self.value():
            return queryset
        return queryset.filter(Exists(self._attempts().filter(outcome=self.value())))


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
    list_filter = (
        "status",
        LastOutcomeFilter,
        AnyOutcomeFilter,
        "kind",
        ("client", admin.RelatedFieldListFilter),
    )
    list_select_related = ("event", "subscription__client", "client")
    # A publisher's own event id too (issue 14), as the event log accepts it.
    search_fields = (
        "=id",
        "=event__id",
        "=event__idempotency_key",
        "=subscription__id",
    )
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
    actions = ["retry_deliveries", "replay_deliveries"]

    class Media:
        css = {"all": ["delivery/admin.css"]}

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

    @admin.action(description="Replay (send the event again as a new delivery)")
    def replay_deliveries(self, request: HttpRequest, queryset: QuerySet) -> None:
        result = replay.replay_deliveries(deliveries=queryset)
        self.message_user(
            request,
            f"{result.created} new deliveries created; {result.skipped} skipped "
            f"(webhook paused, expired or deleted, a test delivery, or one still "
            f"unfinished).",
        )


class _FirstDeliveries(BaseInlineFormSet):
    def get_queryset(self) -> QuerySet[Delivery]:
        if not hasattr(self, "_first"):
            self._first = super().get_queryset()[:EVENT_PAGE_DELIVERIES]
        return self._first


class DeliveryInline(admin.TabularInline):
    """The first deliveries of an event, read-only."""

    model = Delivery
    formset = _FirstDeliveries
    fields = (
        "delivery_link",
        "subscription",
        "kind",
        "status",
        "attempts_count",
        "last_status_code",
        "next_attempt_at",
        "delivered_at",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("created_at", "id")
    verbose_name_plural = f"deliveries (the first {EVENT_PAGE_DELIVERIES})"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Delivery]:
        return (
            super()
            .get_queryset(request)
            .select_related("subscription__client")
            .defer(
                "subscription__secret",
                "subscription__previous_secret",
                "subscription__oauth2_client_secret",
                "subscription__headers",
            )
        )

    @admin.display(description="delivery")
    def delivery_link(self, obj: Delivery) -> str:
        url = reverse("admin:delivery_delivery_change", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, obj.pk)


class EventWithDeliveriesAdmin(EventAdmin):
    """The events app's admin, plus the event's deliveries (which only this
    app may know about)."""

    inlines = [DeliveryInline]
    fields = [*EventAdmin.fields, "all_deliveries"]

    class Media:
        css = {"all": ["delivery/admin.css"]}

    readonly_fields = fields

    @admin.display(description="deliveries")
    def all_deliveries(self, obj: Event) -> str:
        # Counted with the index on delivery.event_id.
        count = Delivery.objects.filter(event=obj).count()
        url = reverse("admin:delivery_delivery_changelist")
        return format_html(
            '<a href="{}?event__id__exact={}">all {} deliveries of this event</a>',
            url,
            obj.pk,
            count,
        )


admin.site.unregister(Event)
admin.site.register(Event, EventWithDeliveriesAdmin)


@admin.register(Attempt)
class AttemptAdmin(_ReadOnly):
    list_display = ("delivery", "number", "at", "status_code", "outcome", "duration_ms")
    list_filter = ("outcome",)
    raw_id_fields = ("delivery",)
    readonly_fields = ("delivery", *Attempt.RECORDED)
    show_full_result_count = False


@admin.register(Breaker)
class BreakerAdmin(admin.ModelAdmin):
    list_display = (
        "destination",
        "consecutive_failures",
        "open_until",
        "backpressure_until",
        "updated_at",
    )
    search_fields = ("destination",)
    readonly_fields = ("destination", "updated_at")
    fields = list_display
    actions = ["close_breakers"]

    @admin.action(description="Close (forget failures)")
    def close_breakers(self, request: HttpRequest, queryset: QuerySet) -> None:
        closed = services.close_breakers(
            destinations=queryset.values_list("destination", flat=True)
        )
        self.message_user(request, f"{closed} breakers closed.")
