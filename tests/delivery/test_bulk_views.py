"""POST /api/v1/webhooks/{id}/replay and POST /api/v1/deliveries/bulk-retry."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from delivery import services
from delivery.models import Delivery
from delivery.ops import replay
from tests.support.api import assert_envelope
from tests.support.rows import make_delivery

pytestmark = pytest.mark.django_db

BULK = "/api/v1/deliveries/bulk-retry"


def _replay_url(webhook) -> str:
    return f"/api/v1/webhooks/{webhook.id}/replay"


def _ago(**kwargs) -> str:
    return (timezone.now() - timedelta(**kwargs)).isoformat()


def _aged(delivery: Delivery, **kwargs) -> Delivery:
    Delivery.objects.filter(pk=delivery.pk).update(
        created_at=timezone.now() - timedelta(**kwargs)
    )
    delivery.refresh_from_db()
    return delivery


@pytest.fixture
def webhook(api, subscribe):
    return subscribe("http://a.example/hooks", client=api.client_obj)


@pytest.fixture
def theirs(other_api, subscribe):
    return subscribe("http://b.example/hooks", client=other_api.client_obj)


def _new_deliveries(webhook) -> list[Delivery]:
    return list(
        Delivery.objects.filter(subscription=webhook, status="pending").order_by(
            "created_at"
        )
    )


class TestReplay:
    def test_failed_and_expired_deliveries_in_the_range_are_replayed_as_new_ones(
        self, api, webhook
    ):
        failed = _aged(make_delivery(webhook, status="failed"), hours=2)
        expired = _aged(make_delivery(webhook, status="expired"), hours=2)
        _aged(make_delivery(webhook, status="succeeded"), hours=2)
        _aged(make_delivery(webhook, status="failed"), days=3)

        response = api.post(
            _replay_url(webhook), {"since": _ago(days=1)}, format="json"
        )

        assert response.status_code == 202, response.json()
        assert response.json() == {"replayed": 2, "skipped": 0}
        replayed = {d.event_id for d in _new_deliveries(webhook)}
        assert replayed == {failed.event_id, expired.event_id}
        failed.refresh_from_db()
        assert failed.status == "failed"  # the original stays as it was

    def test_status_chooses_what_is_replayed_and_until_ends_the_range(
        self, api, webhook
    ):
        early = _aged(make_delivery(webhook, status="succeeded"), hours=5)
        _aged(make_delivery(webhook, status="succeeded"), hours=1)
        _aged(make_delivery(webhook, status="failed"), hours=5)

        response = api.post(
            _replay_url(webhook),
            {"since": _ago(days=1), "until": _ago(hours=2), "status": ["succeeded"]},
            format="json",
        )

        assert response.json() == {"replayed": 1, "skipped": 0}
        assert [d.event_id for d in _new_deliveries(webhook)] == [early.event_id]

    def test_repeating_it_sends_nothing_twice(self, api, webhook):
        _aged(make_delivery(webhook, status="failed"), hours=1)
        body = {"since": _ago(days=1)}

        first = api.post(_replay_url(webhook), body, format="json")
        second = api.post(_replay_url(webhook), body, format="json")

        assert first.json() == second.json() == {"replayed": 1, "skipped": 0}
        assert len(_new_deliveries(webhook)) == 1

    def test_the_same_request_while_the_first_still_runs_is_a_409_and_sends_nothing(
        self, api, webhook
    ):
        _aged(make_delivery(webhook, status="failed"), hours=1)
        since = timezone.now() - timedelta(days=1)
        # What the first call records before it selects anything.
        key = replay._replay_key(
            webhook.pk, since, None, replay.WEBHOOK_REPLAY_DEFAULT_STATUSES
        )
        assert replay._reserve(key)

        response = api.post(
            _replay_url(webhook), {"since": since.isoformat()}, format="json"
        )

        assert_envelope(response, 409)
        assert _new_deliveries(webhook) == []

    def test_a_replay_that_fails_leaves_no_record_so_it_can_be_sent_again(
        self, api, webhook, monkeypatch
    ):
        _aged(make_delivery(webhook, status="failed"), hours=1)
        body = {"since": _ago(days=1)}

        def broken(**kwargs):
            raise RuntimeError("the database went away")

        monkeypatch.setattr(replay, "replay_deliveries", broken)
        assert api.post(_replay_url(webhook), body, format="json").status_code == 500
        monkeypatch.undo()

        again = api.post(_replay_url(webhook), body, format="json")
        assert again.json() == {"replayed": 1, "skipped": 0}

    def test_after_the_window_a_replayed_event_is_skipped_while_its_replay_is_pending(
        self, api, webhook, monkeypatch
    ):
        _aged(make_delivery(webhook, status="failed"), hours=1)
        # No record of the first call: only the deliveries' state decides.
        monkeypatch.setattr(replay, "_cache_get", lambda key: None)
        body = {"since": _ago(days=1)}

        api.post(_replay_url(webhook), body, format="json")
        again = api.post(_replay_url(webhook), body, format="json")

        assert again.json() == {"replayed": 0, "skipped": 1}
        assert len(_new_deliveries(webhook)) == 1

    def test_an_event_whose_replay_succeeded_is_not_replayed_again_from_its_original(
        self, api, webhook, monkeypatch
    ):
        original = _aged(make_delivery(webhook, status="failed"), hours=1)
        monkeypatch.setattr(replay, "_cache_get", lambda key: None)
        body = {"since": _ago(days=1)}
        api.post(_replay_url(webhook), body, format="json")
        Delivery.objects.filter(subscription=webhook, status="pending").update(
            status="succeeded"
        )

        again = api.post(_replay_url(webhook), body, format="json")

        assert again.json() == {"replayed": 0, "skipped": 1}
        assert Delivery.objects.filter(event_id=original.event_id).count() == 2

    def test_a_paused_webhook_skips_everything(self, api, subscribe):
        paused = subscribe(
            "http://a.example/hooks", client=api.client_obj, status="paused"
        )
        _aged(make_delivery(paused, status="failed"), hours=1)

        response = api.post(_replay_url(paused), {"since": _ago(days=1)}, format="json")

        assert response.json() == {"replayed": 0, "skipped": 1}

    def test_test_deliveries_are_not_replayed(self, api, webhook):
        _aged(make_delivery(webhook, status="failed", kind="test"), hours=1)

        response = api.post(
            _replay_url(webhook), {"since": _ago(days=1)}, format="json"
        )

        assert response.json() == {"replayed": 0, "skipped": 0}

    def test_a_range_over_the_cap_is_a_400_naming_it_and_replays_nothing(
        self, api, webhook, monkeypatch
    ):
        monkeypatch.setattr(replay, "WEBHOOK_REPLAY_MAX", 2)
        for _ in range(3):
            _aged(make_delivery(webhook, status="failed"), hours=1)

        payload = assert_envelope(
            api.post(_replay_url(webhook), {"since": _ago(days=1)}, format="json"), 400
        )

        assert "more than 2 deliveries" in payload["errors"]["since"][0]
        assert _new_deliveries(webhook) == []

    def test_another_tenants_webhook_is_a_404_and_untouched(self, api, theirs):
        _aged(make_delivery(theirs, status="failed"), hours=1)

        assert_envelope(
            api.post(_replay_url(theirs), {"since": _ago(days=1)}, format="json"), 404
        )
        assert _new_deliveries(theirs) == []

    def test_an_unknown_or_malformed_webhook_id_is_a_404(self, api):
        body = {"since": _ago(days=1)}
        assert_envelope(
            api.post(f"/api/v1/webhooks/{uuid.uuid4()}/replay", body, format="json"),
            404,
        )
        assert_envelope(api.post("/api/v1/webhooks/x/replay", body, format="json"), 404)

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({}, "since"),
            ({"since": "last week"}, "since"),
            (
                {"since": "2026-11-02T00:00:00Z", "until": "2026-11-01T00:00:00Z"},
                "until",
            ),
            ({"since": "2026-11-01T00:00:00Z", "status": ["pending"]}, "status.0"),
            ({"since": "2026-11-01T00:00:00Z", "status": []}, "status"),
            ({"since": "2026-11-01T00:00:00Z", "limit": 3}, "limit"),
        ],
    )
    def test_a_bad_body_is_a_400_naming_the_field(self, api, webhook, body, field):
        payload = assert_envelope(
            api.post(_replay_url(webhook), body, format="json"), 400
        )

        assert list(payload["errors"]) == [field]

    def test_a_publish_key_is_a_403(self, publisher_api, webhook):
        assert_envelope(
            publisher_api.post(
                _replay_url(webhook), {"since": _ago(days=1)}, format="json"
            ),
            403,
        )


class TestBulkRetry:
    def test_given_ids_are_made_due_again_with_a_fresh_ttl(self, api, webhook):
        failed = make_delivery(
            webhook, status="failed", expires_at=timezone.now() - timedelta(hours=1)
        )
        expired = make_delivery(webhook, status="expired", next_attempt_at=None)

        response = api.post(
            BULK, {"ids": [str(failed.id), str(expired.id)]}, format="json"
        )

        assert response.status_code == 202, response.json()
        assert response.json() == {"retried": 2, "skipped": 0}
        for delivery in (failed, expired):
            delivery.refresh_from_db()
            assert delivery.status == "pending"
            assert delivery.backoff_step == 0
            assert delivery.next_attempt_at <= timezone.now()
            assert delivery.expires_at > timezone.now()

    def test_unknown_and_another_tenants_ids_are_skipped_and_untouched(
        self, api, webhook, theirs
    ):
        mine = make_delivery(webhook, status="failed")
        foreign = make_delivery(theirs, status="failed")

        response = api.post(
            BULK,
            {"ids": [str(mine.id), str(foreign.id), str(uuid.uuid4())]},
            format="json",
        )

        assert response.json() == {"retried": 1, "skipped": 2}
        foreign.refresh_from_db()
        assert foreign.status == "failed"

    def test_succeeded_pending_held_and_test_deliveries_are_skipped(self, api, webhook):
        rows = [
            make_delivery(webhook, status="succeeded"),
            make_delivery(webhook, status="pending"),
            make_delivery(webhook, status="held"),
            make_delivery(webhook, status="failed", kind="test"),
        ]

        response = api.post(
            BULK,
            {"ids": [str(d.id) for d in rows], "status": ["failed"]},
            format="json",
        )

        assert response.json() == {"retried": 0, "skipped": 4}
        assert [Delivery.objects.get(pk=d.pk).status for d in rows] == [
            "succeeded",
            "pending",
            "held",
            "failed",
        ]

    def test_a_paused_webhooks_deliveries_are_skipped(self, api, subscribe):
        paused = subscribe(
            "http://a.example/hooks", client=api.client_obj, status="paused"
        )
        delivery = make_delivery(paused, status="failed")

        response = api.post(BULK, {"ids": [str(delivery.id)]}, format="json")

        assert response.json() == {"retried": 0, "skipped": 1}

    def test_repeating_it_retries_nothing_twice(self, api, webhook):
        delivery = make_delivery(webhook, status="failed")
        body = {"ids": [str(delivery.id)]}

        first = api.post(BULK, body, format="json")
        second = api.post(BULK, body, format="json")

        assert first.json() == {"retried": 1, "skipped": 0}
        assert second.json() == {"retried": 0, "skipped": 1}

    def test_a_filter_retries_the_webhooks_deliveries_in_the_range_and_status(
        self, api, webhook, subscribe
    ):
        other_webhook = subscribe("http://c.example/hooks", client=api.client_obj)
        in_range = _aged(make_delivery(webhook, status="failed"), hours=2)
        cancelled = _aged(make_delivery(webhook, status="cancelled"), hours=2)
        too_old = _aged(make_delivery(webhook, status="failed"), days=2)
        too_new = make_delivery(webhook, status="failed")
        elsewhere = _aged(make_delivery(other_webhook, status="failed"), hours=2)

        response = api.post(
            BULK,
            {"webhook": str(webhook.id), "since": _ago(days=1), "until": _ago(hours=1)},
            format="json",
        )

        assert response.json() == {"retried": 1, "skipped": 0}
        statuses = {
            d.pk: Delivery.objects.get(pk=d.pk).status
            for d in (in_range, cancelled, too_old, too_new, elsewhere)
        }
        assert statuses == {
            in_range.pk: "pending",
            cancelled.pk: "cancelled",
            too_old.pk: "failed",
            too_new.pk: "failed",
            elsewhere.pk: "failed",
        }
        response = api.post(
            BULK,
            {
                "webhook": str(webhook.id),
                "since": _ago(days=1),
                "status": ["cancelled"],
            },
            format="json",
        )
        assert response.json() == {"retried": 1, "skipped": 0}

    def test_a_filter_on_another_tenants_webhook_is_a_404(self, api, theirs):
        delivery = make_delivery(theirs, status="failed")

        assert_envelope(
            api.post(
                BULK, {"webhook": str(theirs.id), "since": _ago(days=1)}, format="json"
            ),
            404,
        )
        delivery.refresh_from_db()
        assert delivery.status == "failed"

    def test_a_filter_matching_more_than_the_cap_is_a_400_and_retries_nothing(
        self, api, webhook, monkeypatch
    ):
        monkeypatch.setattr(services, "BULK_RETRY_MAX", 2)
        rows = [
            _aged(make_delivery(webhook, status="failed"), hours=1) for _ in range(3)
        ]

        payload = assert_envelope(
            api.post(
                BULK, {"webhook": str(webhook.id), "since": _ago(days=1)}, format="json"
            ),
            400,
        )

        assert "more than 2 deliveries" in payload["errors"]["since"][0]
        assert {Delivery.objects.get(pk=d.pk).status for d in rows} == {"failed"}

    def test_more_ids_than_the_cap_is_a_400_naming_ids(self, api):
        ids = [str(uuid.uuid4()) for _ in range(services.BULK_RETRY_MAX + 1)]

        payload = assert_envelope(api.post(BULK, {"ids": ids}, format="json"), 400)

        assert list(payload["errors"]) == ["ids"]

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({}, "ids"),
            ({"ids": []}, "ids"),
            ({"ids": ["nope"]}, "ids.0"),
            (
                {"ids": [str(uuid.UUID(int=1))], "since": "2026-11-01T00:00:00Z"},
                "since",
            ),
            ({"webhook": str(uuid.UUID(int=1))}, "since"),
            ({"webhook": "nope", "since": "2026-11-01T00:00:00Z"}, "webhook"),
            ({"ids": [str(uuid.UUID(int=1))], "status": ["succeeded"]}, "status.0"),
            ({"ids": [str(uuid.UUID(int=1))], "extra": 1}, "extra"),
        ],
    )
    def test_a_bad_body_is_a_400_naming_the_field(self, api, body, field):
        payload = assert_envelope(api.post(BULK, body, format="json"), 400)

        assert list(payload["errors"]) == [field]

    def test_without_a_key_it_is_a_401(self, client):
        assert_envelope(client.post(BULK, {}, content_type="application/json"), 401)


def test_the_schema_describes_replay_and_bulk_retry(schema):
    replay_op = schema["paths"]["/api/v1/webhooks/{id}/replay"]["post"]
    bulk_op = schema["paths"]["/api/v1/deliveries/bulk-retry"]["post"]

    assert set(replay_op["responses"]) >= {"202", "400", "401", "403", "404"}
    assert set(bulk_op["responses"]) >= {"202", "400", "401", "403", "404"}
    components = schema["components"]["schemas"]
    assert set(components["WebhookReplayResult"]["properties"]) == {
        "replayed",
        "skipped",
    }
    assert set(components["BulkRetryResult"]["properties"]) == {"retried", "skipped"}
    assert components["WebhookReplayRequest"]["required"] == ["since"]
