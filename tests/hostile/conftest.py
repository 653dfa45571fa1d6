"""One real worker and beat for the whole module of hostile-receiver tests
(starting them per test would cost more than the tests), and the raw socket
servers of the sender's own tests."""

import os
from collections.abc import Iterator

import pytest
from django.db import connection

from tests.integration.fixtures import parse_like_settings
from tests.integration.stack import ACCELERATED, ServiceProcess, Stack
from tests.security.conftest import listener, start_raw_server  # noqa: F401

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
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    stack = Stack(
        database_url=(
            f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}"
        ),
        redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        env=HOSTILE,
    )
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
