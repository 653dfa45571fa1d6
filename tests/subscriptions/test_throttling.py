"""The throttle's blocks: a process claims requests from the shared Redis
counter in blocks and never grants more than the limit across processes."""

import pytest
from django.core.cache import caches

from subscriptions import throttling
from subscriptions.throttling import ApiKeyRateThrottle

pytestmark = pytest.mark.django_db

NOW = 1_000_020.0


@pytest.fixture
def frozen_window(monkeypatch):
    monkeypatch.setattr(ApiKeyRateThrottle, "timer", staticmethod(lambda: NOW))


def _counter(api) -> str:
    api_key = api.client_obj.api_keys.get()
    window = int(NOW // 60)
    return caches["default"].make_and_validate_key(
        f"throttle_api_key_{api_key.pk}:{api_key.prefix}:{window}"
    )


def _another_process(monkeypatch):
    """What a second web process holds: no tokens of its own yet."""
    monkeypatch.setattr(throttling, "_allowances", {})


def test_a_block_serves_several_requests_and_the_next_block_adds_to_the_count(
    api, settings, frozen_window, monkeypatch
):
    settings.WEBHOOK_THROTTLE_RATE = "4000/min"  # blocks of 4
    redis = caches["default"]._cache.get_client(write=True)

    for _ in range(4):
        assert api.get("/api/v1/webhooks/").status_code == 200
    assert int(redis.get(_counter(api))) == 4

    assert api.get("/api/v1/webhooks/").status_code == 200
    assert int(redis.get(_counter(api))) == 8

    _another_process(monkeypatch)
    assert api.get("/api/v1/webhooks/").status_code == 200
    assert int(redis.get(_counter(api))) == 12


def test_processes_never_grant_more_than_the_limit_between_them(
    api, settings, frozen_window, monkeypatch
):
    settings.WEBHOOK_THROTTLE_RATE = "4000/min"  # blocks of 4
    redis = caches["default"]._cache.get_client(write=True)
    # Other processes have claimed all but 2 of this window's requests.
    redis.set(_counter(api), 3998, ex=61)

    statuses = [api.get("/api/v1/webhooks/").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    # The block that crossed the limit told this process the window is spent:
    # it refuses without asking Redis again (nor counting further).
    redis.set(_counter(api), 0, ex=61)
    assert api.get("/api/v1/webhooks/").status_code == 429
    assert int(redis.get(_counter(api))) == 0

    _another_process(monkeypatch)
    redis.set(_counter(api), 4000, ex=61)
    assert api.get("/api/v1/webhooks/").status_code == 429
    assert int(redis.get(_counter(api))) == 4004


def test_small_limits_are_exact_across_processes(
    api, settings, frozen_window, monkeypatch
):
    settings.WEBHOOK_THROTTLE_RATE = "3/min"  # blocks of 1

    assert api.get("/api/v1/webhooks/").status_code == 200
    _another_process(monkeypatch)
    assert api.get("/api/v1/webhooks/").status_code == 200
    _another_process(monkeypatch)
    assert api.get("/api/v1/webhooks/").status_code == 200
    _another_process(monkeypatch)
    assert api.get("/api/v1/webhooks/").status_code == 429


def test_the_block_is_a_thousandth_of_the_limit_and_at_least_one():
    assert throttling.block_size(300_000) == 300
    assert throttling.block_size(6000) == 6
    assert throttling.block_size(999) == 1
