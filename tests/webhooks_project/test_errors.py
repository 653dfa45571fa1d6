"""The error envelope on every error the API can return."""

import logging

import pytest
from django.test import RequestFactory
from rest_framework.test import APIClient

from subscriptions import selectors
from subscriptions.throttling import ApiKeyRateThrottle, block_size
from tests.support.api import assert_envelope, create, new_body
from webhooks_project import errors

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path",
    ["/nope", "/api/v1/nope", "/api/v2/webhooks", "/api/v1/webhooks//", "/"],
)
def test_an_unknown_url_is_a_404_in_the_envelope_with_or_without_a_key(api, path):
    assert_envelope(api.get(path), 404)
    assert_envelope(APIClient().post(path), 404)


def test_unknown_urls_are_a_json_404_even_with_debug_on(api, settings):
    settings.DEBUG = True

    assert_envelope(api.get("/api/v1/webhooks/not-a-uuid"), 404)


@pytest.mark.parametrize(
    "method,path",
    [
        ("put", "/api/v1/webhooks"),
        ("patch", "/api/v1/webhooks/"),
        ("delete", "/api/v1/webhooks"),
        ("get", "/batch/api/v1/webhooks"),
        ("put", "/api/v1/webhooks/00000000-0000-4000-8000-000000000000"),
        ("get", "/api/v1/webhooks/00000000-0000-4000-8000-000000000000/resume"),
        ("get", "/api/v1/webhooks/00000000-0000-4000-8000-000000000000/rotate-secret"),
    ],
)
def test_a_wrong_method_is_a_405_in_the_envelope(api, method, path):
    response = getattr(api, method)(path)

    assert_envelope(response, 405)
    assert response["Allow"]


def test_an_unexpected_exception_is_a_500_logged_under_the_envelopes_uuid(
    api, monkeypatch, caplog
):
    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(selectors, "list_subscriptions", broken)

    with caplog.at_level(logging.ERROR, logger="webhooks.api"):
        response = api.get("/api/v1/webhooks/")

    payload = assert_envelope(response, 500)
    assert b"boom" not in response.content
    assert any(payload["uuid"] in record.getMessage() for record in caplog.records)


def test_djangos_own_error_views_answer_the_envelope(caplog):
    request = RequestFactory().get("/x")

    with caplog.at_level(logging.ERROR, logger="webhooks.api"):
        assert_envelope(errors.server_error(request), 500)
    assert_envelope(errors.not_found(request, None), 404)
    assert_envelope(errors.bad_request(request, None), 400)
    assert_envelope(errors.permission_denied(request, None), 403)
    from django.core.exceptions import RequestDataTooBig

    assert_envelope(errors.bad_request(request, RequestDataTooBig()), 413)


def test_a_disallowed_host_is_a_400_in_the_envelope(settings):
    settings.ALLOWED_HOSTS = ["api.example.com"]

    assert_envelope(APIClient().get("/api/v1/webhooks/", HTTP_HOST="evil.test"), 400)


def test_a_too_large_body_outside_the_api_views_is_a_413_in_the_envelope(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = APIClient().post(
        "/admin/login/",
        "a=" + "x" * 5000,
        content_type="application/x-www-form-urlencoded",
    )

    assert_envelope(response, 413)


# --- throttling -----------------------------------------------------------------


@pytest.fixture
def frozen_window(monkeypatch):
    """Requests of one test fall in one throttle window, whatever the clock."""
    monkeypatch.setattr(ApiKeyRateThrottle, "timer", staticmethod(lambda: 1_000_020.0))


def test_requests_over_the_rate_are_a_429_with_retry_after(
    api, settings, frozen_window
):
    settings.WEBHOOK_THROTTLE_RATE = "3/min"
    for _ in range(3):
        assert api.get("/api/v1/webhooks/").status_code == 200

    response = api.get("/api/v1/webhooks/")

    assert_envelope(response, 429)
    # The window ends at 1_000_020 // 60 * 60 + 60 = 1_000_080: 60 s away.
    assert 1 <= int(response["Retry-After"]) <= 61
    assert_envelope(create(api, new_body()), 429)


def test_the_throttle_counts_per_api_key(api, make_api, settings, frozen_window):
    settings.WEBHOOK_THROTTLE_RATE = "2/min"
    second_key_same_client = make_api("acme", ["subscriptions"])
    for _ in range(2):
        api.get("/api/v1/webhooks/")
    assert api.get("/api/v1/webhooks/").status_code == 429

    assert second_key_same_client.get("/api/v1/webhooks/").status_code == 200


def test_publishing_is_throttled_at_its_own_higher_rate(
    publisher_api, settings, frozen_window
):
    settings.WEBHOOK_THROTTLE_RATE = "1/min"
    settings.WEBHOOK_PUBLISH_THROTTLE_RATE = "3/min"
    body = {"type": "DELIVERED", "resource_id": "PKG"}
    for _ in range(3):
        assert (
            publisher_api.post("/api/v1/events", body, format="json").status_code == 202
        )

    response = publisher_api.post("/api/v1/events", body, format="json")

    assert_envelope(response, 429)


def test_the_throttle_lets_requests_through_when_its_cache_is_down(
    api, settings, monkeypatch
):
    class DownCache:
        def add(self, *args, **kwargs):
            raise ConnectionError("redis is down")

        incr = add

    settings.WEBHOOK_THROTTLE_RATE = "1/min"
    monkeypatch.setattr(ApiKeyRateThrottle, "cache", DownCache())

    for _ in range(3):
        assert api.get("/api/v1/webhooks/").status_code == 200


def test_the_throttle_counts_in_the_shared_redis_cache(api, frozen_window):
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    assert isinstance(caches["default"], RedisCache)
    api_key = api.client_obj.api_keys.get()
    window = int(1_000_020.0 // 60)

    for _ in range(2):
        api.get("/api/v1/webhooks/")

    # The process claimed one block (6 of the default 6000/min) for both.
    key = f"throttle_api_key_{api_key.pk}:{api_key.prefix}:{window}"
    assert caches["default"].get(key) == block_size(6000) == 6


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/webhooks/00000000-0000-4000-8000-000000000000/test",
        "/api/v1/webhooks/00000000-0000-4000-8000-000000000000/deliveries",
        "/api/v1/webhooks/00000000-0000-4000-8000-000000000000/",
        "/api/v1/webhooks/00000000-0000-4000-8000-000000000000/resume/",
    ],
)
def test_the_webhook_routes_leave_other_paths_to_other_apps(path):
    from django.urls import Resolver404, get_resolver

    with pytest.raises(Resolver404):
        get_resolver("subscriptions.urls").resolve(path)
