"""The deliveries admin: narrowing the list, a delivery's attempts, and the
retry and replay actions."""

import pytest
from django.urls import reverse

from delivery.models import Delivery
from tests.support.admin import attempt, delivery, webhook

pytestmark = pytest.mark.django_db

LIST = reverse("admin:delivery_delivery_changelist")


def _listed(response) -> set:
    return {row.pk for row in response.context["cl"].result_list}


@pytest.fixture
def deliveries() -> dict[str, Delivery]:
    acme, globex = webhook("acme"), webhook("globex")
    recovered = delivery(acme, "succeeded")
    attempt(recovered, "retry", status_code=503)
    attempt(recovered, "ack", status_code=200)
    failed = delivery(acme, "failed")
    attempt(failed, "retry", status_code=500)
    attempt(failed, "permanent_failure", status_code=410)
    waiting = delivery(globex, "pending")
    attempt(waiting, "retry", status_code=503)
    return {
        "recovered": recovered,
        "failed": failed,
        "waiting": waiting,
        "new": delivery(globex, "pending"),
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param({"status__exact": "failed"}, {"failed"}, id="by status"),
        pytest.param({"last_outcome": "retry"}, {"waiting"}, id="by last outcome"),
        pytest.param({"last_outcome": "ack"}, {"recovered"}, id="by last ack"),
        pytest.param(
            {"any_outcome": "retry"},
            {"recovered", "failed", "waiting"},
            id="by any outcome",
        ),
        pytest.param({"any_outcome": "skipped"}, set(), id="by an outcome never seen"),
        pytest.param({"client": "globex"}, {"waiting", "new"}, id="by tenant"),
        pytest.param(
            {"client": "acme", "any_outcome": "permanent_failure"},
            {"failed"},
            id="tenant and outcome",
        ),
    ],
)
def test_deliveries_can_be_filtered_by_status_outcome_and_tenant(
    admin_client, deliveries, params, expected
):
    if "client" in params:
        tenant = params.pop("client")
        owner = next(d for d in deliveries.values() if d.client.name == tenant)
        params["client__id__exact"] = owner.client_id

    response = admin_client.get(LIST, params)

    assert response.status_code == 200
    assert _listed(response) == {deliveries[name].pk for name in expected}


def test_the_filters_offer_every_outcome_twice(admin_client, deliveries):
    page = admin_client.get(LIST).content.decode()

    assert "outcome of the last attempt" in page and "outcome of any attempt" in page
    for outcome in ("ack", "retry", "failure", "permanent_failure", "skipped"):
        assert f"?last_outcome={outcome}" in page
        assert f"?any_outcome={outcome}" in page


def test_a_delivery_page_shows_each_attempt_in_order(admin_client):
    row = delivery(webhook(), "failed")
    attempt(row, "failure", duration_ms=3001, error="read timeout after 3.0s")
    attempt(
        row,
        "permanent_failure",
        status_code=410,
        duration_ms=87,
        response_excerpt='{"error": "endpoint gone for good"}',
    )

    response = admin_client.get(
        reverse("admin:delivery_delivery_change", args=[row.pk])
    )

    assert response.status_code == 200
    page = response.content.decode()
    for shown in (
        "read timeout after 3.0s",
        "3001",
        "410",
        "87",
        "endpoint gone for good",
        "permanent_failure",
    ):
        assert shown in page
    assert page.index("read timeout after 3.0s") < page.index("endpoint gone for good")


def test_the_retry_action_refuses_a_succeeded_delivery_and_says_why(
    admin_client, deliveries
):
    failed, recovered = deliveries["failed"], deliveries["recovered"]

    response = admin_client.post(
        LIST,
        {
            "action": "retry_deliveries",
            "_selected_action": [str(failed.pk), str(recovered.pk)],
        },
        follow=True,
    )

    page = response.content.decode()
    assert "1 deliveries will be sent again." in page
    assert "already succeeded" in page
    failed.refresh_from_db()
    recovered.refresh_from_db()
    assert (failed.status, failed.backoff_step) == ("pending", 0)
    assert recovered.status == "succeeded"


def test_the_replay_action_creates_new_deliveries_of_the_same_events(
    admin_client, deliveries
):
    recovered, failed = deliveries["recovered"], deliveries["failed"]
    waiting = deliveries["waiting"]
    before = Delivery.objects.count()

    response = admin_client.post(
        LIST,
        {
            "action": "replay_deliveries",
            "_selected_action": [str(recovered.pk), str(failed.pk), str(waiting.pk)],
        },
        follow=True,
    )

    assert "2 new deliveries created; 1 skipped" in response.content.decode()
    assert Delivery.objects.count() == before + 2
    for original in (recovered, failed):
        again = Delivery.objects.exclude(pk=original.pk).get(
            event=original.event, subscription=original.subscription
        )
        assert (again.status, again.kind, again.attempts_count) == (
            "pending",
            "event",
            0,
        )
        original.refresh_from_db()
        assert original.attempts.count() == 2
    assert Delivery.objects.filter(event=waiting.event).count() == 1


def test_the_replay_action_skips_a_paused_webhook(admin_client):
    row = delivery(webhook(status="paused"), "failed")

    response = admin_client.post(
        LIST,
        {"action": "replay_deliveries", "_selected_action": [str(row.pk)]},
        follow=True,
    )

    assert "0 new deliveries created; 1 skipped" in response.content.decode()
    assert Delivery.objects.count() == 1


def test_deliveries_cannot_be_added_or_edited(admin_client, deliveries):
    row = deliveries["failed"]
    url = reverse("admin:delivery_delivery_change", args=[row.pk])

    admin_client.post(url, {"status": "succeeded"})

    row.refresh_from_db()
    assert row.status == "failed"
    assert admin_client.get(reverse("admin:delivery_delivery_add")).status_code == 403


def test_deliveries_can_be_found_by_the_publishers_event_id(admin_client, deliveries):
    event = deliveries["failed"].event
    event.idempotency_key = "order-1"
    event.save(update_fields=["idempotency_key"])

    found = admin_client.get(LIST, {"q": "order-1"})
    by_uuid = admin_client.get(LIST, {"q": str(event.id)})

    assert found.status_code == by_uuid.status_code == 200
    assert _listed(found) == _listed(by_uuid) == {deliveries["failed"].pk}
