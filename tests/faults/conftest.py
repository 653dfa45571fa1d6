"""Fixtures of the fault tests: a private PostgreSQL (one per session, a fresh
database per test cloned from a migrated template), a private Redis per test,
a ledger (the shared receiver, counting each webhook-id), and the service's
processes pointed at them.

The pytest process itself needs no Django database: it talks to the service
over HTTP and reads rows with psycopg2.
"""

import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.faults.servers import PrivatePostgres, PrivateRedis
from tests.faults.service import FaultService, Keys
from tests.support.paths import ROOT
from tests.support.receiver import Receiver
from tests.support.stack import ACCELERATED, Stack

TEMPLATE = "faults_template"
# ACCELERATED, but with a TTL that outlasts every outage a scenario injects: an
# event expiring while PostgreSQL restarts would be a loss the test caused.
FAULT_ENV: dict[str, str] = {
    **ACCELERATED,
    "WEBHOOK_DELIVERY_TTL": "120s",
    "WEBHOOK_PUBLISH_THROTTLE_RATE": "1000000/min",
    "WEBHOOK_THROTTLE_RATE": "1000000/min",
}


def _manage(database_url: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=Stack(database_url=database_url, redis_url="", env=FAULT_ENV).environ(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise AssertionError(f"manage.py {args} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


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
    connection = private_postgres.connect()
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {TEMPLATE}")
    connection.close()
    url = private_postgres.url(TEMPLATE)
    _manage(url, "migrate", "--noinput", "-v", "0")
    publisher = _manage(
        url, "create_api_key", "--client", "platform", "--scope", "publish"
    )
    tenant = _manage(
        url, "create_api_key", "--client", "acme", "--scope", "subscriptions"
    )
    return Keys(publisher=publisher.strip(), tenant=tenant.strip())


@pytest.fixture
def fault_database_url(
    private_postgres: PrivatePostgres, fault_keys: Keys
) -> Iterator[str]:
    name = f"faults_{uuid.uuid4().hex[:8]}"
    connection = private_postgres.connect()
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    connection.close()
    yield private_postgres.url(name)
    connection = private_postgres.connect()
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    connection.close()


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
