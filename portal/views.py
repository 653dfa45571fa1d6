"""The portal's pages: read the form or query, call one service or selector,
render. Every page needs the session (http.session_required) but `enter`,
which opens it, and `sign_out`, which ends it."""

from functools import wraps

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.defaultfilters import pluralize
from django.views.decorators.http import (
    require_GET,
    require_http_methods,
    require_POST,
)

from delivery import services as delivery_services
from delivery.ops.replay import (
    WEBHOOK_REPLAY_DEFAULT_STATUSES,
    WEBHOOK_REPLAY_STATUSES,
)
from events.selectors import EVENT_LIST_STATUSES
from portal import access, forms, http, selectors, services
from subscriptions import services as subscription_services
from subscriptions.models import Subscription
from webhooks_project import errors
from webhooks_project.cursors import decode_cursor, encode_cursor


@require_GET
def enter(request: HttpRequest, token: str) -> HttpResponse:
    """The link a platform hands its customer: opens the session once."""
    try:
        opened = access.open_session(token=token)
    except access.LinkRefused as exc:
        return http.refused(
            request, f"{exc} Ask the platform for a new link to the portal."
        )
    # To a URL without the token, so it stays out of history and referrers.
    response = http.with_headers(redirect("portal-webhooks"))
    http.set_session_cookie(request, response, opened)
    return response


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    """Ends the session (on a shared computer); the page says how to come back."""
    access.end_session(cookie=request.COOKIES.get(http.COOKIE_NAME, ""))
    response = http.page(request, "portal/signed_out.html")
    http.drop_session_cookie(response)
    return response


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: the portal's forms get a page, everything else the
    API's envelope."""
    if request.path.startswith(http.COOKIE_PATH):
        return http.refused(
            request,
            "The form could not be accepted (its security token was missing or "
            "out of date). Go back, reload the page and try again.",
        )
    return errors.csrf_failure(request, reason)


@require_GET
@http.session_required
def webhook_list(request: HttpRequest) -> HttpResponse:
    client = http.portal_client(request)
    return http.page(
        request,
        "portal/webhook_list.html",
        {
            "client": client,
            "nav": "webhooks",
            "webhooks": selectors.webhook_rows(client=client),
        },
    )


def _webhook_or_404(view):
    """Passes the session client's webhook named by the URL's `id`, or
    answers the 404 page (unknown, malformed and another client's alike)."""

    @wraps(view)
    def wrapped(request: HttpRequest, id: str) -> HttpResponse:
        webhook = selectors.own_webhook(
            client=http.portal_client(request), webhook_id=id
        )
        if webhook is None:
            return http.not_found(request)
        return view(request, webhook)

    return wrapped


def _create_form(
    request: HttpRequest, errors: dict[str, list[str]] | None = None
) -> HttpResponse:
    shown = forms.errors_by_field(errors or {}, forms.WEBHOOK_FIELDS)
    return http.page(
        request,
        "portal/webhook_create.html",
        {
            "client": http.portal_client(request),
            "nav": "webhooks",
            "event_types": selectors.event_type_catalogue(),
            "profiles": Subscription.Profile.values,
            # Header values are never sent back, not even to their author.
            "form": {k: v for k, v in request.POST.items() if k != "headers"},
            "chosen": request.POST.getlist("event_groups"),
            "errors": shown,
            "summary": forms.error_summary(errors or {}),
        },
        status=400 if errors else 200,
    )


@require_http_methods(["GET", "POST"])
@http.session_required
def webhook_create(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _create_form(request)
    try:
        webhook = services.create_webhook(
            client=http.portal_client(request), form=request.POST
        )
    except services.Invalid as exc:
        return _create_form(request, exc.errors)
    return _secret_page(request, webhook, webhook.secret, created=True)


def _secret_page(
    request: HttpRequest, webhook: Subscription, secret: str, *, created: bool
) -> HttpResponse:
    """The one page that shows a signing secret: the answer to the POST that
    made it (no-store), never a page that can be loaded again."""
    return http.page(
        request,
        "portal/secret.html",
        {
            "client": http.portal_client(request),
            "nav": "webhooks",
            "webhook": selectors.represent(webhook),
            "secret": secret,
            "created": created,
        },
        status=201 if created else 200,
    )


@require_GET
@http.session_required
@_webhook_or_404
def webhook_detail(request: HttpRequest, webhook: Subscription) -> HttpResponse:
    cursor = request.GET.get("cursor")
    try:
        before = decode_cursor(cursor) if cursor else None
    except ValueError:
        return http.not_found(request)
    deliveries, following = selectors.webhook_deliveries(
        subscription=webhook, before=before
    )
    return http.page(
        request,
        "portal/webhook_detail.html",
        {
            "client": http.portal_client(request),
            "nav": "webhooks",
            "webhook": selectors.represent(webhook),
            "deliveries": deliveries,
            "next_cursor": encode_cursor(*following) if following else None,
        },
    )


@require_POST
@http.session_required
@_webhook_or_404
def webhook_test(request: HttpRequest, webhook: Subscription) -> HttpResponse:
    delivery_services.send_test_delivery(subscription=webhook)
    messages.success(
        request, "A test event is on its way; reload to see its attempt below."
    )
    return redirect("portal-webhook", webhook.pk)


@require_POST
@http.session_required
@_webhook_or_404
def webhook_resume(request: HttpRequest, webhook: Subscription) -> HttpResponse:
    try:
        subscription_services.resume_subscription(subscription=webhook)
    except subscription_services.SubscriptionNotPaused:
        messages.error(request, "The webhook is not paused.")
    else:
        messages.success(request, "The webhook is active again.")
    return redirect("portal-webhook", webhook.pk)


@require_POST
@http.session_required
@_webhook_or_404
def webhook_rotate_secret(request: HttpRequest, webhook: Subscription) -> HttpResponse:
    secret = subscription_services.rotate_secret(subscription=webhook)
    return _secret_page(request, webhook, secret, created=False)


@require_POST
@http.session_required
@_webhook_or_404
def webhook_delete(request: HttpRequest, webhook: Subscription) -> HttpResponse:
    subscription_services.delete_subscription(subscription=webhook)
    messages.success(request, f"The webhook to {webhook.url} was deleted.")
    return redirect("portal-webhooks")


def _events_page(
    request: HttpRequest, replay_errors: dict[str, list[str]] | None = None
) -> HttpResponse:
    client = http.portal_client(request)
    filter_errors: dict[str, list[str]] = {}
    try:
        events, cursor = services.events_page(client=client, params=request.GET)
    except services.Invalid as exc:
        events, cursor, filter_errors = [], None, exc.errors
    replay_shown = forms.errors_by_field(replay_errors or {}, forms.REPLAY_FIELDS)
    return http.page(
        request,
        "portal/events.html",
        {
            "client": client,
            "nav": "events",
            "events": events,
            "next_cursor": cursor,
            "filters": {k: request.GET.get(k, "") for k in forms.EVENT_FILTERS},
            "filter_summary": forms.error_summary(filter_errors),
            "event_types": selectors.event_type_catalogue(),
            "event_statuses": sorted(EVENT_LIST_STATUSES),
            "webhooks": selectors.webhook_choices(client=client),
            "replay_statuses": WEBHOOK_REPLAY_STATUSES,
            "replay_defaults": request.POST.getlist("status")
            or list(WEBHOOK_REPLAY_DEFAULT_STATUSES),
            "replay_form": request.POST,
            "replay_errors": replay_shown,
            "replay_summary": forms.error_summary(replay_errors or {}),
        },
        status=400 if replay_errors or filter_errors else 200,
    )


@require_GET
@http.session_required
def events(request: HttpRequest) -> HttpResponse:
    return _events_page(request)


@require_POST
@http.session_required
def events_replay(request: HttpRequest) -> HttpResponse:
    try:
        result = services.replay_webhook(
            client=http.portal_client(request), form=request.POST
        )
    except services.Invalid as exc:
        return _events_page(request, exc.errors)
    messages.success(
        request,
        f"Replayed {result.created} deliver{pluralize(result.created, 'y,ies')}; "
        f"skipped {result.skipped}.",
    )
    return redirect("portal-events")


@require_GET
@http.session_required
def event_types(request: HttpRequest) -> HttpResponse:
    return http.page(
        request,
        "portal/event_types.html",
        {
            "client": http.portal_client(request),
            "nav": "types",
            "event_types": selectors.event_type_catalogue(),
        },
    )


def unknown_page(request: HttpRequest) -> HttpResponse:
    return http.not_found(request)
