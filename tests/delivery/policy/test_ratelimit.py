"""The shared rate limiter against the tests' Redis (and its in-process
stand-in without Redis)."""

import time
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest

from delivery.policy import ratelimit
from delivery.policy.ratelimit import Limit
from tests.support.ports import free_port
from webhooks_project.conf import parse_rate


def _limit(rate: str) -> Limit:
    return Limit(f"webhooks:rate:test:{uuid.uuid4()}", parse_rate(rate))


@pytest.fixture(params=["redis", "in-process"])
def backend(request, settings):
    if request.param == "in-process":
        settings.REDIS_URL = ""
    return request.param


def test_requests_are_spaced_one_interval_apart_and_a_backlog_is_spread(backend):
    limit = _limit("10/s")
    assert ratelimit.acquire([limit], max_wait=0) == 0
    # No room now: each later caller is planned one interval after the last.
    planned = [ratelimit.acquire([limit], max_wait=0) for _ in range(3)]
    # 100 ms apart, plus the 10% margin for the receiver's clock.
    assert planned[0] == pytest.approx(0.11, abs=0.05)
    assert planned[1] == pytest.approx(0.22, abs=0.05)
    assert planned[2] == pytest.approx(0.33, abs=0.05)


def test_a_short_wait_is_slept_instead_of_postponed(backend):
    limit = _limit("20/s")
    assert ratelimit.acquire([limit], max_wait=0) == 0
    started = time.monotonic()
    assert ratelimit.acquire([limit], max_wait=1.0) == 0
    assert 0.03 <= time.monotonic() - started < 0.5


def test_every_limit_of_a_request_must_have_room(backend):
    webhook, host = _limit("600/m"), _limit("1/m")
    assert ratelimit.acquire([webhook, host], max_wait=0) == 0
    # The webhook has room again after 110 ms; the host only after a minute.
    time.sleep(0.15)
    assert ratelimit.acquire([webhook], max_wait=0) == 0
    # A minute (plus at most 100 ms of margin) after the first request.
    assert 59 < ratelimit.acquire([webhook, host], max_wait=0) <= 60.1


def test_with_redis_unreachable_a_limited_request_is_postponed(settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    wait = ratelimit.acquire([_limit("10/s")], max_wait=0.5)
    assert wait == ratelimit.UNAVAILABLE_WAIT.total_seconds()


def test_limits_for_a_webhook_and_the_host_default(settings):
    settings.WEBHOOK_HOST_RATE_LIMIT = None
    plain = SimpleNamespace(pk="a", rate_limit="")
    limited = SimpleNamespace(pk="b", rate_limit="600/m")
    assert ratelimit.limits_for(subscription=plain, destination="http://h:80") == ()
    (own,) = ratelimit.limits_for(subscription=limited, destination="http://h:80")
    assert own.rate.interval == timedelta(milliseconds=100)

    settings.WEBHOOK_HOST_RATE_LIMIT = parse_rate("50/s")
    (host,) = ratelimit.limits_for(subscription=plain, destination="http://h:80")
    assert host.key.endswith("host:http://h:80")
    assert len(ratelimit.limits_for(subscription=limited, destination="x")) == 2
