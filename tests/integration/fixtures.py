"""Pytest fixtures for tests that run the real service processes.

Other suites reuse them with `from tests.integration.fixtures import *`
(see tests/integration/conftest.py): `receiver`, `stack_factory`, `stack`,
`service_database_url`.
"""

import os
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.db import connection

from tests.integration.receiver import Receiver
from tests.integration.stack import ACCELERATED, Stack
from webhooks_project import conf

__all__ = ["receiver", "stack", "stack_factory", "service_database_url"]


def parse_like_settings(name: str, raw: str) -> object:
    """Parse an env override the way settings.py parses that variable."""
    current = getattr(django_settings, name)
    if isinstance(current, bool):
        return conf.parse_bool(raw)
    if isinstance(current, timedelta):
        return conf.parse_duration(raw)
    if isinstance(current, tuple):
        return conf.parse_schedule(raw)
    if isinstance(current, float):
        return conf.parse_fraction(raw)
    if isinstance(current, int):
        return conf.parse_positive_int(raw)
    return raw


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def service_database_url(transactional_db: None) -> str:
    """The pytest-django test database, for processes outside this one. Rows
    the test writes are committed (transactional_db), so they can see them."""
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return (
        f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )


@pytest.fixture
def stack_factory(
    service_database_url: str, settings: object
) -> Iterator[Callable[..., Stack]]:
    """stack_factory(WEBHOOK_X="…") -> a Stack whose processes run with
    ACCELERATED plus these overrides; the test process gets the same values
    in its settings, so what it writes (e.g. a delivery's TTL) agrees."""
    stacks: list[Stack] = []

    def make(env: Mapping[str, str] | None = None, **overrides: str) -> Stack:
        merged = {**ACCELERATED, **(env or {}), **overrides}
        for name, raw in merged.items():
            if hasattr(django_settings, name):
                setattr(settings, name, parse_like_settings(name, raw))
        stack = Stack(
            database_url=service_database_url,
            redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            env=merged,
        )
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.stop()


@pytest.fixture
def stack(stack_factory: Callable[..., Stack]) -> Stack:
    """A Stack with the ACCELERATED settings (start its processes yourself)."""
    return stack_factory()
