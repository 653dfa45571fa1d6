"""Admin for clients, API keys and subscriptions. Secrets are never shown: not
the key hash, not the signing secrets, header values or OAuth2 client secret."""

from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html

from delivery import services as delivery_services
from events.selectors import list_event_types
from subscriptions import selectors, services
from subscriptions.models import ApiKey, Client, Subscription, SubscriptionFilter


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    fields = ("prefix", "name", "scopes", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A key is created on the API key page, which shows it once.
        return False


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    list_display = ("name", "created_at")
    search_fields = ("name",)
    # Never notification_secret; the URL is the client's to set (PUT
    # /api/v1/notification-settings, which also makes the secret).
    fields = ("name", "notification_url", "created_at", "updated_at")
    readonly_fields = ("notification_url", "created_at", "updated_at")
    inlines = [ApiKeyInline]


class ApiKeyCreationForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=ApiKey.Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[ApiKey.Scope.SUBSCRIPTIONS],
    )

    class Meta:
        model = ApiKey
        fields = ("client", "name", "scopes", "tenants")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("tenants") and ApiKey.Scope.PUBLISH not in cleaned.get(
            "scopes", []
        ):
            self.add_error("tenants", "Only a key with the publish scope is bound.")
        return cleaned


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = (
        "prefix",
        "client",
        "name",
        "scope_list",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = ("revoked_at", "client")
    search_fields = ("prefix", "name", "client__name")
    list_select_related = ("client",)
    actions = ["revoke"]
    # Searched by name (ClientAdmin.search_fields): a select of every client
    # would not render.
    autocomplete_fields = ("tenants",)
    # key_hash is never in any form or page.
    fields = (
        "client",
        "name",
        "prefix",
        "scopes",
        "tenants",
        "created_at",
        "last_used_at",
        "revoked_at",
    )

    def get_form(
        self, request: HttpRequest, obj: ApiKey | None = None, **kwargs: Any
    ) -> type[forms.ModelForm]:
        if obj is None:
            kwargs["form"] = ApiKeyCreationForm
            kwargs["fields"] = ApiKeyCreationForm.Meta.fields
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> Any:
        return ApiKeyCreationForm.Meta.fields if obj is None else self.fields

    def get_readonly_fields(
        self, request: HttpRequest, obj: ApiKey | None = None
    ) -> Any:
        if obj is None:
            return ()
        return tuple(f for f in self.fields if f not in ("name", "tenants"))

    @admin.display(description="scopes")
    def scope_list(self, obj: ApiKey) -> str:
        return ", ".join(obj.scopes)

    def save_model(
        self, request: HttpRequest, obj: ApiKey, form: forms.ModelForm, change: bool
    ) -> None:
        if change:
            obj.save(update_fields=["name"])
            return
        api_key, key = services.create_api_key(
            client_name=obj.client.name,
            scopes=form.cleaned_data["scopes"],
            name=obj.name,
            tenants=[tenant.name for tenant in form.cleaned_data["tenants"]],
        )
        obj.pk = api_key.pk
        obj.refresh_from_db()
        # Only for response_add, on this request's own instance: never saved.
        obj.plaintext_key = key  # type: ignore[attr-defined]

    def response_add(
        self, request: HttpRequest, obj: ApiKey, post_url_continue: Any = None
    ) -> HttpResponse:
        """The new key is in this answer to the POST and nowhere else: not in
        a flash message (Django keeps those in a signed but readable cookie,
        or in the session table), so it never reaches a cookie or the
        database, and no later page can show it again."""
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "API key created",
            "api_key": obj,
            "key": obj.plaintext_key,  # type: ignore[attr-defined]
        }
        response = TemplateResponse(
            request, "subscriptions/admin_api_key_created.html", context
        )
        add_never_cache_headers(response)
        return response

    @admin.action(description="Revoke the selected API keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for api_key in queryset:
            services.revoke_api_key(api_key=api_key)
        messages.success(request, f"Revoked {queryset.count()} key(s).")


class SubscriptionFilterInline(admin.TabularInline):
    model = SubscriptionFilter
    fields = ("event_type", "subtype")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class EventTypeListFilter(admin.SimpleListFilter):
    """Subscriptions listening to an event type (of any or one subtype), from
    the catalogue: a DISTINCT over every filter row would be slower."""

    title = "event type"
    parameter_name = "event_type"

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin
    ) -> list[tuple[str, str]]:
        return [(t.name, t.name) for t in list_event_types()]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[Subscription]
    ) -> QuerySet[Subscription]:
        if not self.value():
            return queryset
        # A subquery, not a join, so a subscription is listed once.
        listening = SubscriptionFilter.objects.filter(event_type=self.value())
        return queryset.filter(pk__in=listening.values("subscription_id"))


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = (
        "short_id",
        "client",
        "destination_host",
        "url",
        "status",
        "consecutive_failures",
        "last_success_at",
    )
    list_filter = (
        "status",
        ("client", admin.RelatedFieldListFilter),
        EventTypeListFilter,
    )
    search_fields = ("id", "url", "tracking_id")
    list_select_related = ("client",)
    date_hierarchy = "created_at"
    inlines = [SubscriptionFilterInline]
    actions = ["pause", "resume", "send_test_event"]
    # Configuration is immutable and secrets are write-only: nothing here is an
    # input, and secret, previous_secret, oauth2_client_secret and headers are
    # not even read-only fields (only header names are shown).
    fields = (
        "id",
        "client",
        "effective_status",
        "paused_reason",
        "paused_at",
        "url",
        "content_type",
        "header_names",
        "tracking_id",
        "event_groups",
        "oauth2_token_url",
        "oauth2_client_id",
        "oauth2_audience",
        "oauth2_scope",
        "profile",
        "delivery_ttl",
        "previous_secret_expires_at",
        "consecutive_failures",
        "last_success_at",
        "last_failure_at",
        "created_at",
        "updated_at",
        "expires_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Created through the API, which validates and checks destinations.
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Subscription]:
        # The write-only secrets are never shown: do not even decrypt them
        # (header names have a column of their own).
        return (
            super()
            .get_queryset(request)
            .defer("secret", "previous_secret", "oauth2_client_secret", "headers")
        )

    @admin.display(description="id", ordering="id")
    def short_id(self, obj: Subscription) -> str:
        # The full id is in the link and the tooltip; the column stays narrow.
        return format_html('<span title="{}">{}…</span>', obj.pk, str(obj.pk)[:8])

    @admin.display(description="destination host", ordering="url")
    def destination_host(self, obj: Subscription) -> str:
        # The API refuses URLs with credentials, so host and port are all there is.
        return urlsplit(obj.url).netloc or "—"

    @admin.display(description="status")
    def effective_status(self, obj: Subscription) -> str:
        return selectors.effective_status(obj, now=timezone.now())

    @admin.display(description="header names")
    def header_names(self, obj: Subscription) -> str:
        return ", ".join(obj.header_names) or "—"

    @admin.action(description="Pause the selected subscriptions")
    def pause(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        paused = sum(
            services.pause_subscription(
                subscription=sub, reason=f"paused by {request.user} in the admin"
            )
            for sub in queryset
        )
        messages.success(request, f"Paused {paused} subscription(s).")

    @admin.action(description="Resume the selected subscriptions")
    def resume(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        resumed = 0
        for sub in queryset:
            try:
                services.resume_subscription(subscription=sub)
            except services.SubscriptionNotPaused:
                continue
            resumed += 1
        messages.success(request, f"Resumed {resumed} subscription(s).")

    @admin.action(description="Send a test event to the selected subscriptions")
    def send_test_event(
        self, request: HttpRequest, queryset: QuerySet[Subscription]
    ) -> None:
        sent, now = 0, timezone.now()
        for sub in queryset:
            # As in the API: an expired webhook is gone for its client.
            if selectors.effective_status(sub, now=now) == Subscription.Status.EXPIRED:
                continue
            delivery_services.send_test_delivery(subscription=sub)
            sent += 1
        messages.success(request, f"Sent a test event to {sent} subscription(s).")

    def delete_model(self, request: HttpRequest, obj: Subscription) -> None:
        services.delete_subscription(subscription=obj)

    def delete_queryset(
        self, request: HttpRequest, queryset: QuerySet[Subscription]
    ) -> None:
        for sub in queryset:
            services.delete_subscription(subscription=sub)
