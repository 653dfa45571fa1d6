"""Each profile end to end: a real Celery worker posts to a real local
receiver that verifies the request the way its seed tells a receiver to
(docs/api.md, "Profiles"): plain hmac/hashlib for raas, the configured
authentication header for capillary, a Standard Webhooks library for
standard. A tampered request fails the same check."""

import hashlib
import hmac
import json

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.support.flows import attempts_of, create_webhook, publish, wait_for_delivery
from tests.support.receiver import Received, Reply

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def raas_verified(received: Received, secret: str) -> bool:
    """Seed 002's receiver: HMAC-SHA256 of the raw body, hex, with the secret."""
    expected = hmac.new(secret.encode(), received.body, hashlib.sha256).hexdigest()
    sent = received.headers.get("x-raas-webhook-signature", "")
    return hmac.compare_digest(expected, sent)


def tampered(received: Received) -> Received:
    body = json.loads(received.body)
    body["payload"] = {"n": 2}
    return Received(
        path=received.path,
        headers=received.headers,
        body=json.dumps(body, separators=(",", ":")).encode(),
    )


def test_a_raas_receiver_verifies_the_request_and_rejects_a_tampered_one(
    stack, start_receiver, api
):
    secrets: dict[str, str] = {}

    def respond(received: Received) -> Reply:
        return Reply(200 if raas_verified(received, secrets["raas"]) else 401)

    receiver = start_receiver(respond)
    stack.start_worker()
    url = receiver.url("/raas")
    webhook = create_webhook(api, url, configuration={"url": url, "profile": "raas"})
    secrets["raas"] = webhook["secret"]

    event_id, _ = publish(api.client_obj, payload={"n": 1}, resource_id="TX-1")

    delivery = wait_for_delivery(event_id, webhook["id"], "succeeded", "failed")
    assert delivery.status == "succeeded"
    (request,) = receiver.requests("/raas")
    body = json.loads(request.body)
    assert request.headers["x-raas-event"] == "DELIVERED"
    assert body["event_name"] == "DELIVERED"
    assert body["id"] == event_id
    assert body["resource_id"] == "TX-1"
    assert body["subscription_id"] == webhook["id"]
    assert body["payload"] == {"n": 1}
    assert not raas_verified(tampered(request), webhook["secret"])


def test_a_raas_409_is_retried_at_the_fixed_interval_until_a_success(
    stack, receiver, api
):
    receiver.script("/raas", Reply(409), Reply(409), Reply(200))
    stack.start_worker()
    stack.start_beat()
    url = receiver.url("/raas")
    webhook = create_webhook(api, url, configuration={"url": url, "profile": "raas"})

    event_id, _ = publish(api.client_obj)

    delivery = wait_for_delivery(event_id, webhook["id"], "succeeded", "failed")
    assert delivery.status == "succeeded"
    outcomes = [attempt.outcome for attempt in attempts_of(delivery)]
    assert outcomes == ["conflict_retry", "conflict_retry", "ack"]
    # The 409s consumed no step of the backoff table.
    assert delivery.backoff_step == 0


def test_a_capillary_receiver_authenticates_by_its_configured_header(
    stack, start_receiver, api
):
    def authenticated(received: Received) -> bool:
        # Seed 001: "Every event is sent with the Webhook's configured
        # authentication header".
        sent = received.headers.get("x-capillary-auth", "")
        return hmac.compare_digest(sent, "cap-token-123")

    receiver = start_receiver(lambda r: Reply(200 if authenticated(r) else 401))
    stack.start_worker()
    webhook = create_webhook(
        api,
        receiver.url("/cap"),
        configuration={
            "url": receiver.url("/cap"),
            "profile": "capillary",
            "headers": [{"key": "x-capillary-auth", "value": "cap-token-123"}],
        },
    )

    event_id, _ = publish(api.client_obj, resource_id="1655_684494987")

    delivery = wait_for_delivery(event_id, webhook["id"], "succeeded", "failed")
    assert delivery.status == "succeeded"
    (request,) = receiver.requests("/cap")
    body = json.loads(request.body)
    assert {"eventName", "eventId", "orgId", "refId", "apiRequestId", "createdAt"} <= (
        set(body)
    )
    assert body["eventName"] == "DELIVERED"
    assert body["eventId"] == event_id
    assert body["refId"] == "1655_684494987"
    assert isinstance(body["orgId"], int) and isinstance(body["createdAt"], int)
    # The Standard Webhooks signature rides along: tampering shows there too.
    Webhook(webhook["secret"]).verify(request.body, dict(request.headers))
    with pytest.raises(WebhookVerificationError):
        Webhook(webhook["secret"]).verify(
            tampered_capillary(request.body), dict(request.headers)
        )
    forged = Received(path="/cap", headers=type(request.headers)(), body=request.body)
    assert not authenticated(forged)


def tampered_capillary(raw: bytes) -> bytes:
    body = json.loads(raw)
    body["refId"] = "someone-else"
    return json.dumps(body, separators=(",", ":")).encode()


def test_a_standard_receiver_verifies_with_a_standard_webhooks_library(
    stack, start_receiver, api
):
    secrets: dict[str, str] = {}

    def respond(received: Received) -> Reply:
        try:
            Webhook(secrets["standard"]).verify(received.body, dict(received.headers))
        except WebhookVerificationError:
            return Reply(401)
        return Reply(200)

    receiver = start_receiver(respond)
    stack.start_worker()
    webhook = create_webhook(api, receiver.url("/std"))
    secrets["standard"] = webhook["secret"]
    assert webhook["configuration"]["profile"] == "standard"

    event_id, _ = publish(api.client_obj)

    delivery = wait_for_delivery(event_id, webhook["id"], "succeeded", "failed")
    assert delivery.status == "succeeded"
    (request,) = receiver.requests("/std")
    assert "x-raas-webhook-signature" not in request.headers
    with pytest.raises(WebhookVerificationError):
        Webhook(webhook["secret"]).verify(tampered(request).body, dict(request.headers))
