"""Fixtures of the fault tests: a private PostgreSQL (one per session, a fresh
database per test cloned from a migrated template), a private Redis per test,
a ledger (the shared receiver, counting each webhook-id), and the service's
processes pointed at them.

The pytest process itself needs no Django database: it talks to the service
over HTTP and reads rows with psycopg2.
"""

from collections.abc import Callable, Iterator

import pytest

from tests.faults.servers import PrivatePostgres, PrivateRedis
from tests.faults.service import FaultService, Keys
from tests.faults.template import (
    FAULT_ENV,
    copy_template,
    drop_database,
    migrate_template,
)
from tests.support.receiver import Receiver
from tests.support.stack import Stack


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def fault_keys(private_postgres: PrivatePostgres) -> Keys:
    """Migrates the template database once and creates the API keys in it;
    every test's database is a copy."""
    return migrate_template(private_postgres)


@pytest.fixture
def fault_database_url(
    private_postgres: PrivatePostgres, fault_keys: Keys
) -> Iterator[str]:
    name = copy_template(private_postgres)
    try:
        yield private_postgres.url(name)
    finally:
        drop_database(private_postgres, name)


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def ledger() -> Iterator[Receiver]:
    """Answers every request 200 (`ledger.default = Reply(delay=…)` to slow
    it down); `counts()`, `missing()` and `duplicates()` are by webhook-id."""
    with Receiver() as receiver:
        yield receiver


@pytest.fixture
def fault_service(
    fault_database_url: str, private_redis: PrivateRedis, fault_keys: Keys
) -> Iterator[Callable[..., FaultService]]:
    """fault_service(WEBHOOK_X="…") -> the service on the private servers, web
    process started; start its workers and beat with `.stack`."""
    stacks: list[Stack] = []

    def make(**overrides: str) -> FaultService:
        stack = Stack(
            database_url=fault_database_url,
            redis_url=private_redis.url(),
            env={**FAULT_ENV, **overrides},
        )
        stacks.append(stack)
        service = FaultService(
            stack=stack, database_url=fault_database_url, keys=fault_keys
        )
        service.start_web()
        return service

    yield make
    for stack in stacks:
        stack.stop()
