import pytest

from subscriptions.models import Subscription, SubscriptionFilter
from tests.support.api import (
    CLIENT_SECRET,
    HEADER_VALUE,
    assert_envelope,
    create,
    new_body,
    row_counts,
)

pytestmark = pytest.mark.django_db

BATCH = "/batch/api/v1/webhooks"


@pytest.fixture
def batch_body() -> dict:
    body = new_body()
    del body["trackingId"]
    body["trackingIds"] = ["TESTPACKAGEDELIVERED", "SHIPMENTNUMBER", "THIRD"]
    return body


def test_it_creates_one_webhook_per_tracking_id(api, batch_body):
    response = create(api, batch_body, BATCH)

    assert response.status_code == 201, response.content
    webhooks = response.json()
    assert [w["trackingId"] for w in webhooks] == batch_body["trackingIds"]
    assert len({w["id"] for w in webhooks}) == 3
    secrets = {w["secret"] for w in webhooks}
    assert len(secrets) == 3 and all(s.startswith("whsec_") for s in secrets)
    for webhook in webhooks:
        assert webhook["authenticator"] == "acme"
        assert webhook["configuration"]["headers"] == [{"key": "x-protection-header"}]
        sub = Subscription.objects.get(pk=webhook["id"])
        assert sub.secret == webhook["secret"]
        assert sub.filters.count() == 3
    assert row_counts() == (3, 9)
    assert HEADER_VALUE.encode() not in response.content
    assert CLIENT_SECRET.encode() not in response.content


def test_the_trailing_slash_path_works_too(api, batch_body):
    assert create(api, batch_body, BATCH + "/").status_code == 201


def test_a_thousand_tracking_ids_are_accepted(api, batch_body):
    batch_body["trackingIds"] = [f"T{i:04d}" for i in range(1000)]

    response = create(api, batch_body, BATCH)

    assert response.status_code == 201
    assert len(response.json()) == 1000
    assert row_counts() == (1000, 3000)


@pytest.mark.parametrize(
    "tracking_ids,path",
    [
        pytest.param([], "trackingIds", id="empty"),
        pytest.param([f"T{i}" for i in range(1001)], "trackingIds", id="1001"),
        pytest.param("A", "trackingIds", id="string"),
        pytest.param(None, "trackingIds", id="null"),
        pytest.param(["A", ""], "trackingIds.1", id="blank-entry"),
        pytest.param(["A", "T" * 129], "trackingIds.1", id="129-chars"),
        pytest.param(["A", 5], "trackingIds.1", id="number"),
    ],
)
def test_bad_tracking_ids_are_a_400_and_write_nothing(
    api, batch_body, tracking_ids, path
):
    batch_body["trackingIds"] = tracking_ids

    payload = assert_envelope(create(api, batch_body, BATCH), 400)

    assert path in payload["errors"]
    assert row_counts() == (0, 0)


def test_missing_tracking_ids_is_a_400(api, batch_body):
    del batch_body["trackingIds"]

    payload = assert_envelope(create(api, batch_body, BATCH), 400)

    assert "trackingIds" in payload["errors"]


def test_a_single_tracking_id_field_is_refused_in_a_batch(api, batch_body):
    batch_body["trackingId"] = "X"

    payload = assert_envelope(create(api, batch_body, BATCH), 400)

    assert "trackingId" in payload["errors"]


def test_duplicate_tracking_ids_inside_the_batch_are_a_400_naming_them(api, batch_body):
    batch_body["trackingIds"] = ["A", "B", "A", "C", "B"]

    payload = assert_envelope(create(api, batch_body, BATCH), 400)

    assert payload["errors"] == {"trackingIds": ["duplicate tracking ids: A, B"]}
    assert row_counts() == (0, 0)


def test_the_batch_is_validated_like_a_single_create(api, batch_body):
    batch_body["configuration"]["url"] = "ftp://example.com"
    batch_body["event_groups"] = ["NOPE"]

    payload = assert_envelope(create(api, batch_body, BATCH), 400)

    assert {"configuration.url", "event_groups.0"} <= set(payload["errors"])
    assert row_counts() == (0, 0)
    assert HEADER_VALUE.encode() not in create(api, batch_body, BATCH).content


def test_a_batch_duplicating_an_existing_webhook_is_a_409_naming_it_and_writes_nothing(
    api, body, batch_body
):
    body["trackingId"] = "SHIPMENTNUMBER"
    assert create(api, body).status_code == 201
    before = row_counts()

    payload = assert_envelope(create(api, batch_body, BATCH), 409)

    assert "SHIPMENTNUMBER" in payload["reason"]
    assert "THIRD" not in payload["reason"]
    assert row_counts() == before


def test_another_tenants_identical_webhook_does_not_conflict(
    api, other_api, batch_body
):
    assert create(other_api, batch_body, BATCH).status_code == 201

    assert create(api, batch_body, BATCH).status_code == 201


def test_a_batch_that_loses_a_race_is_a_409_and_writes_nothing(
    api, body, batch_body, monkeypatch
):
    body["trackingId"] = "THIRD"
    assert create(api, body).status_code == 201
    before = row_counts()
    from subscriptions import selectors

    real = selectors.live_duplicates
    calls = []

    def blind_first_check(**kwargs):
        calls.append(kwargs)
        found = real(**kwargs)
        return found.none() if len(calls) == 1 else found

    monkeypatch.setattr(selectors, "live_duplicates", blind_first_check)

    payload = assert_envelope(create(api, batch_body, BATCH), 409)

    assert "THIRD" in payload["reason"]
    assert row_counts() == before
    assert SubscriptionFilter.objects.count() == before[1]
