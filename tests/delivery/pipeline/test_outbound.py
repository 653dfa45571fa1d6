"""The outbound request's custom headers: a webhook stored before the
reserved-header list grew (subscriptions/headers.py) keeps its row, but the
headers that are reserved now are never sent."""

import pytest
from django.utils import timezone

from delivery.models import Delivery
from delivery.pipeline.engine import deliver_due_batch
from delivery.pipeline.outbound import build_request
from tests.support.rows import make_delivery, make_event, reload

pytestmark = pytest.mark.django_db

# Accepted as custom headers before issue 19 grew the list; the row keeps them.
NOW_RESERVED = [
    {"key": "Cookie", "value": "session=stolen"},
    {"key": "Proxy-Authorization", "value": "Basic cHJveHk6cHJveHk="},
    {"key": "Upgrade", "value": "websocket"},
    {"key": "Content-Encoding", "value": "gzip"},
    {"key": "Keep-Alive", "value": "timeout=600"},
    {"key": "webhook-version", "value": "2"},
]


def test_headers_reserved_since_the_webhook_was_stored_are_not_sent(
    subscribe, receiver, kicked
):
    subscription = subscribe(
        receiver.url("/hooks"),
        headers=[{"key": "x-protection-header", "value": "12345-67890"}, *NOW_RESERVED],
    )
    delivery = make_delivery(subscription)

    deliver_due_batch(limit=10)

    assert reload(delivery).status == Delivery.Status.SUCCEEDED
    (request,) = receiver.requests()
    assert request.headers["x-protection-header"] == "12345-67890"
    for header in NOW_RESERVED:
        assert header["key"] not in request.headers, header["key"]
    # The stored configuration is not rewritten: only the request leaves them out.
    subscription.refresh_from_db()
    assert len(subscription.headers) == 1 + len(NOW_RESERVED)


def test_a_stored_authorization_header_never_shadows_the_oauth2_token(subscribe):
    subscription = subscribe(
        "https://receiver.example.com/hooks",
        headers=[{"key": "authorization", "value": "Bearer stale"}],
        oauth2_token_url="https://auth.example.com/token",
        oauth2_client_id="client",
        oauth2_client_secret="s3cret",
    )
    event = make_event(subscription.client)

    request = build_request(event=event, subscription=subscription, now=timezone.now())

    assert request.oauth2 is not None
    assert not {name.lower() for name in request.headers} & {"authorization"}
