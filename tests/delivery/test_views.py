"""The delivery endpoints: /webhooks/{id}/test, /webhooks/{id}/deliveries,
/deliveries/{id}, /deliveries/{id}/retry."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from delivery.models import Attempt, Delivery
from events.models import Event
from tests.support.api import assert_envelope
from tests.support.factories import ClientFactory
from tests.support.rows import make_delivery, make_event

pytestmark = pytest.mark.django_db

DELIVERY_KEYS = {
    "id",
    "event_id",
    "webhook_id",
    "kind",
    "status",
    "attempts_count",
    "next_attempt_at",
    "expires_at",
    "created",
    "delivered_at",
    "attempts",
}
ATTEMPT_KEYS = {
    "number",
    "at",
    "duration_ms",
    "status_code",
    "outcome",
    "error",
    "response_excerpt",
}


@pytest.fixture
def webhook(api, subscribe):
    return subscribe("http://a.example/hooks", client=api.client_obj)


@pytest.fixture
def theirs(other_api, subscribe):
    return subscribe("http://b.example/hooks", client=other_api.client_obj)


class TestTestEndpoint:
    def test_it_answers_202_with_the_test_deliverys_id(self, api, webhook):
        response = api.post(f"/api/v1/webhooks/{webhook.id}/test")
        assert response.status_code == 202
        body = response.json()
        assert set(body) == {"delivery_id"}
        delivery = Delivery.objects.get(pk=body["delivery_id"])
        assert (delivery.kind, delivery.status) == ("test", "pending")
        assert delivery.subscription_id == webhook.id
        assert delivery.event.type == "TEST"

    def test_someone_elses_webhook_is_not_found(self, api, theirs):
        response = api.post(f"/api/v1/webhooks/{theirs.id}/test")
        assert_envelope(response, 404)
        assert not Delivery.objects.exists()

    @pytest.mark.parametrize("bad", ["nope", "1234", str(uuid.uuid4())])
    def test_an_unknown_or_malformed_id_is_not_found(self, api, bad):
        assert_envelope(api.post(f"/api/v1/webhooks/{bad}/test"), 404)

    def test_it_needs_a_key_with_the_subscriptions_scope(
        self, client, make_api, webhook
    ):
        assert_envelope(client.post(f"/api/v1/webhooks/{webhook.id}/test"), 401)
        publisher = make_api("acme", ["publish"])
        assert_envelope(publisher.post(f"/api/v1/webhooks/{webhook.id}/test"), 403)


class TestDeliveryList:
    def url(self, webhook) -> str:
        return f"/api/v1/webhooks/{webhook.id}/deliveries"

    def test_newest_first_with_a_cursor(self, api, webhook):
        made = [make_delivery(webhook) for _ in range(5)]
        # two of them in the same instant: the id breaks the tie
        same = timezone.now() - timedelta(minutes=1)
        Delivery.objects.filter(pk__in=[made[1].pk, made[2].pk]).update(created_at=same)
        expected = [str(d.id) for d in Delivery.objects.order_by("-created_at", "-id")]
        seen, cursor, pages = [], None, 0
        while True:
            query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            response = api.get(self.url(webhook), query)
            assert response.status_code == 200
            body = response.json()
            assert set(body) == {"results", "next"}
            assert len(body["results"]) <= 2
            seen += [row["id"] for row in body["results"]]
            cursor = body["next"]
            pages += 1
            if cursor is None:
                break
            assert pages < 10
        assert seen == expected
        assert pages == 3

    def test_a_page_that_ends_exactly_has_no_next(self, api, webhook):
        make_delivery(webhook)
        make_delivery(webhook)
        body = api.get(self.url(webhook), {"limit": 2}).json()
        assert len(body["results"]) == 2
        assert body["next"] is None

    def test_the_default_limit_is_100(self, api, webhook):
        for _ in range(101):
            make_delivery(webhook)
        body = api.get(self.url(webhook)).json()
        assert len(body["results"]) == 100
        assert body["next"]

    def test_it_filters_by_status(self, api, webhook):
        make_delivery(webhook, status="failed")
        wanted = make_delivery(webhook, status="succeeded")
        body = api.get(self.url(webhook), {"status": "succeeded"}).json()
        assert [row["id"] for row in body["results"]] == [str(wanted.id)]

    def test_each_row_is_a_delivery_object_with_its_attempts(self, api, webhook):
        delivery = make_delivery(webhook)
        Attempt.objects.create(
            delivery=delivery, number=1, at=timezone.now(), outcome="failure"
        )
        (row,) = api.get(self.url(webhook)).json()["results"]
        assert set(row) == DELIVERY_KEYS
        assert [a["number"] for a in row["attempts"]] == [1]

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ({"status": "done"}, "status"),
            ({"limit": "0"}, "limit"),
            ({"limit": "1001"}, "limit"),
            ({"limit": "many"}, "limit"),
            ({"cursor": "not-a-cursor"}, "cursor"),
            ({"cursor": "MjAyNnxub3BlCg"}, "cursor"),
            ({"event_id": "x" * 65}, "event_id"),
            ({"event_id": "a\x00b"}, "event_id"),
        ],
    )
    def test_bad_parameters_are_a_400(self, api, webhook, query, field):
        payload = assert_envelope(api.get(self.url(webhook), query), 400)
        assert field in payload["errors"]

    def test_it_filters_by_our_event_id_or_the_publishers(self, api, webhook):
        make_delivery(webhook)
        by_key = make_delivery(
            webhook, event=make_event(webhook.client, idempotency_key="order-1")
        )
        # Another publisher reaching this webhook under the same id.
        carrier = ClientFactory(name="carrier")
        also = make_delivery(
            webhook,
            event=Event.objects.create(
                publisher=carrier, type="DELIVERED", idempotency_key="order-1"
            ),
        )

        def listed(event_id: str) -> set[str]:
            response = api.get(self.url(webhook), {"event_id": event_id})
            assert response.status_code == 200, response.json()
            return {row["id"] for row in response.json()["results"]}

        assert listed(str(by_key.event_id)) == {str(by_key.id)}
        assert listed(str(by_key.event_id).upper()) == {str(by_key.id)}
        assert listed("order-1") == {str(by_key.id), str(also.id)}
        assert listed("order-2") == set()
        assert listed(str(uuid.uuid4())) == set()

    def test_someone_elses_webhook_is_not_found(self, api, theirs):
        make_delivery(theirs)
        assert_envelope(api.get(self.url(theirs)), 404)
        assert_envelope(api.get("/api/v1/webhooks/xyz/deliveries"), 404)


class TestDeliveryDetail:
    def test_it_is_shaped_as_api_md_says(self, api, webhook):
        now = timezone.now()
        delivery = make_delivery(
            webhook,
            status="succeeded",
            attempts_count=2,
            delivered_at=now,
            next_attempt_at=now,
        )
        Attempt.objects.create(
            delivery=delivery,
            number=2,
            at=now,
            duration_ms=18,
            status_code=200,
            outcome="ack",
            response_excerpt="ok",
        )
        Attempt.objects.create(
            delivery=delivery,
            number=1,
            at=now - timedelta(seconds=10),
            duration_ms=3012,
            outcome="failure",
            error="timeout: no response in 3.0 s",
        )
        response = api.get(f"/api/v1/deliveries/{delivery.id}")
        assert response.status_code == 200
        body = response.json()
        assert set(body) == DELIVERY_KEYS
        assert body["id"] == str(delivery.id)
        assert body["event_id"] == str(delivery.event_id)
        assert body["webhook_id"] == str(webhook.id)
        assert (body["kind"], body["status"], body["attempts_count"]) == (
            "event",
            "succeeded",
            2,
        )
        assert body["next_attempt_at"] is None  # only a pending one has one
        assert body["delivered_at"].endswith("Z")
        assert body["created"].endswith("Z")
        first, second = body["attempts"]
        assert set(first) == ATTEMPT_KEYS
        assert first == {
            "number": 1,
            "at": first["at"],
            "duration_ms": 3012,
            "status_code": None,
            "outcome": "failure",
            "error": "timeout: no response in 3.0 s",
            "response_excerpt": None,
        }
        assert (second["number"], second["status_code"], second["outcome"]) == (
            2,
            200,
            "ack",
        )
        assert second["response_excerpt"] == "ok"

    def test_a_pending_delivery_shows_its_next_attempt(self, api, webhook):
        delivery = make_delivery(webhook)
        body = api.get(f"/api/v1/deliveries/{delivery.id}").json()
        assert body["next_attempt_at"] is not None

    def test_it_stays_visible_after_its_webhook_is_deleted(self, api, webhook):
        delivery = make_delivery(webhook, status="cancelled")
        webhook.delete()
        body = api.get(f"/api/v1/deliveries/{delivery.id}").json()
        assert body["webhook_id"] is None

    def test_someone_elses_delivery_is_not_found(self, api, theirs):
        delivery = make_delivery(theirs)
        assert_envelope(api.get(f"/api/v1/deliveries/{delivery.id}"), 404)
        assert_envelope(api.get("/api/v1/deliveries/not-a-uuid"), 404)


class TestRetry:
    def test_a_failed_delivery_is_sent_again(self, api, webhook):
        delivery = make_delivery(
            webhook, status="failed", expires_at=timezone.now() - timedelta(hours=1)
        )
        response = api.post(f"/api/v1/deliveries/{delivery.id}/retry")
        assert response.status_code == 202
        body = response.json()
        assert set(body) == DELIVERY_KEYS
        assert body["status"] == "pending"
        delivery.refresh_from_db()
        assert delivery.status == "pending"
        assert delivery.expires_at > timezone.now()

    def test_a_succeeded_delivery_is_a_409(self, api, webhook):
        delivery = make_delivery(webhook, status="succeeded")
        payload = assert_envelope(
            api.post(f"/api/v1/deliveries/{delivery.id}/retry"), 409
        )
        assert "succeeded" in payload["reason"]

    def test_a_delivery_of_a_paused_webhook_is_a_409(self, api, subscribe):
        paused = subscribe(
            "http://a.example/hooks", client=api.client_obj, status="paused"
        )
        delivery = make_delivery(paused, status="failed")
        payload = assert_envelope(
            api.post(f"/api/v1/deliveries/{delivery.id}/retry"), 409
        )
        assert "paused" in payload["reason"]

    def test_someone_elses_delivery_is_not_found(self, api, theirs):
        delivery = make_delivery(theirs, status="failed")
        assert_envelope(api.post(f"/api/v1/deliveries/{delivery.id}/retry"), 404)
        delivery.refresh_from_db()
        assert delivery.status == "failed"


class TestSchema:
    @staticmethod
    def ref(response: dict) -> str:
        return response["content"]["application/json"]["schema"]["$ref"].split("/")[-1]

    def test_the_delivery_endpoints_are_described(self, schema):
        paths = schema["paths"]
        test = paths["/api/v1/webhooks/{id}/test"]["post"]["responses"]
        assert self.ref(test["202"]) == "TestDelivery"
        assert self.ref(test["404"]) == "Error"
        listing = paths["/api/v1/webhooks/{id}/deliveries"]["get"]
        assert self.ref(listing["responses"]["200"]) == "DeliveryPage"
        names = {p["name"] for p in listing["parameters"]}
        assert {"id", "status", "limit", "cursor"} <= names
        detail = paths["/api/v1/deliveries/{id}"]["get"]["responses"]
        assert self.ref(detail["200"]) == "Delivery"
        retry = paths["/api/v1/deliveries/{id}/retry"]["post"]["responses"]
        assert self.ref(retry["202"]) == "Delivery"
        assert self.ref(retry["409"]) == "Error"
        components = schema["components"]["schemas"]
        assert set(components["Delivery"]["properties"]) == DELIVERY_KEYS
        assert set(components["Attempt"]["properties"]) == ATTEMPT_KEYS
