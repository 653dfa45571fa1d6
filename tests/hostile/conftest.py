"""One real worker and beat for the whole module of hostile-receiver tests
(starting them per test would cost more than the tests). The hostile
receivers are the shared raw servers (fixtures `start_raw_server`,
`listener`)."""

from collections.abc import Iterator

import pytest

from tests.support.stack import (
    ACCELERATED,
    ServiceProcess,
    Stack,
    database_url,
    parse_like_settings,
    redis_url,
)

# Failures end `expired` soon (the last retry delay repeats until the TTL),
# and few sender threads, so that a hanging receiver could starve the rest if
# its requests were not cut at WEBHOOK_TIMEOUT.
HOSTILE = {
    **ACCELERATED,
    "WEBHOOK_TIMEOUT": "1s",
    "WEBHOOK_DELIVERY_TTL": "3s",
    "WEBHOOK_HTTP_CONCURRENCY": "2",
}


@pytest.fixture(scope="module")
def shared_stack(django_db_setup, django_db_blocker) -> Iterator[ServiceProcess]:
    """The worker process (beat runs too) against the pytest-django test
    database; each test's committed rows are visible to it."""
    stack = Stack(database_url=database_url(), redis_url=redis_url(), env=HOSTILE)
    try:
        worker = stack.start_worker(concurrency=4)
        stack.start_beat()
        yield worker
    finally:
        stack.stop()


@pytest.fixture
def worker(shared_stack, transactional_db, settings) -> ServiceProcess:
    """The shared worker; this process's settings agree with its (TTLs)."""
    for name, raw in HOSTILE.items():
        setattr(settings, name, parse_like_settings(name, raw))
    return shared_stack
