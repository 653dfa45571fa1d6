"""Fixtures of the end-to-end tests that run the real service processes:
`stack_factory`, `stack` and `service_database_url`. The receiver is the
shared one (tests/support/receiver.py, fixture `receiver`)."""

from collections.abc import Callable, Iterator, Mapping

import pytest
from django.conf import settings as django_settings

from tests.support.stack import (
    ACCELERATED,
    Stack,
    database_url,
    parse_like_settings,
    redis_url,
)


@pytest.fixture
def service_database_url(transactional_db: None) -> str:
    """The pytest-django test database, for processes outside this one. Rows
    the test writes are committed (transactional_db), so they can see them."""
    return database_url()


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
            database_url=service_database_url, redis_url=redis_url(), env=merged
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
