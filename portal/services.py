"""What the portal's forms do, through the same serializers and services as
the API, so that the rules and the messages are the API's."""

from typing import Any
from uuid import UUID

from rest_framework import serializers

from delivery.ops import replay
from delivery.serializers import WebhookReplaySerializer
from delivery.services import TooManyDeliveries
from events import selectors as event_selectors
from events.selectors import EventSummary
from events.serializers import EventListQuerySerializer
from portal import forms
from subscriptions import selectors as subscription_selectors
from subscriptions import services as subscription_services
from subscriptions.models import ApiKey, Client, Subscription
from subscriptions.serializers import WebhookCreateSerializer
from webhooks_project.errors import flatten_errors

EVENTS_PAGE = 50


class Invalid(Exception):
    """The form's errors, as the API's envelope would name them (path -> messages)."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("invalid form")
        self.errors = errors


def _validated(serializer: serializers.Serializer) -> dict[str, Any]:
    if not serializer.is_valid():
        raise Invalid(flatten_errors(serializer.errors))
    return serializer.validated_data


def create_webhook(*, client: Client, form: Any) -> Subscription:
    """POST /api/v1/webhooks from the create form; the returned webhook carries
    its secret, to be shown once. Raises Invalid (400s and the 409 alike)."""
    try:
        body = forms.webhook_body(form)
    except forms.HeaderLinesError as exc:
        raise Invalid({"configuration.headers": [str(exc)]})
    data = _validated(WebhookCreateSerializer(data=body))
    try:
        return subscription_services.create_subscription(
            client=client,
            config=subscription_services.config_from_request(data),
            tracking_id=data.get("trackingId"),
        )
    except (
        subscription_services.DuplicateSubscription,
        subscription_services.WebhookQuotaExceeded,
    ) as exc:
        raise Invalid({"body": [exc.message]})


def replay_webhook(*, client: Client, form: Any) -> replay.ReplayResult:
    """POST /api/v1/webhooks/{id}/replay from the events page's replay form.
    Raises Invalid (a webhook that is not the client's is a field error here:
    the form offers only the client's own)."""
    subscription = _own_webhook(client, form.get("webhook", ""))
    data = _validated(WebhookReplaySerializer(data=forms.replay_body(form)))
    try:
        return replay.replay_webhook(
            subscription=subscription,
            since=data["since"],
            until=data.get("until"),
            statuses=data["status"],
        )
    except TooManyDeliveries as exc:
        raise Invalid({"since": [exc.message]})
    except replay.ReplayInProgress as exc:
        raise Invalid({"body": [str(exc)]})


def _own_webhook(client: Client, value: str) -> Subscription:
    try:
        subscription_id = UUID(value)
    except ValueError:
        raise Invalid({"webhook": ["choose one of your webhooks"]})
    subscription = subscription_selectors.get_subscription(
        client=client, subscription_id=subscription_id
    )
    if subscription is None:
        raise Invalid({"webhook": ["choose one of your webhooks"]})
    return subscription


def events_page(
    *, client: Client, params: Any
) -> tuple[list[EventSummary], str | None]:
    """GET /api/v1/events with a subscriptions key, from the events filter:
    a page of the events that reached the client's webhooks and the cursor
    of the next (None at the end). Raises Invalid."""
    query = _validated(EventListQuerySerializer(data=forms.event_query(params)))
    return event_selectors.events_page(
        client=client,
        scopes=[ApiKey.Scope.SUBSCRIPTIONS],
        limit=EVENTS_PAGE,
        query=query,
    )
