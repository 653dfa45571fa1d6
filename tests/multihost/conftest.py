"""Fixtures of the multi-host tests: the network (one per session); on host
d a private PostgreSQL listening on d's loopback only (one per session, a
database per test copied from a migrated template), in front of it a private
PgBouncer (transaction pooling) and a private redis-server per test, both on
d's address; on host e the ledger receiver; and `cluster`, the service with
its web process started on host a, every process reaching PostgreSQL through
PgBouncer only.

Where this machine cannot make network namespaces (not root, no
CAP_NET_ADMIN, no iproute2) every test here is skipped, saying why.
"""

from collections.abc import Callable, Iterator

import pytest

from tests.faults.servers import PrivatePostgres, PrivateRedis
from tests.faults.service import Keys
from tests.faults.template import (
    FAULT_ENV,
    copy_template,
    drop_database,
    migrate_template,
)
from tests.multihost import netns
from tests.multihost.cluster import (
    DATABASE,
    HOSTS,
    RECEIVER,
    WEB,
    WORKERS,
    Cluster,
)
from tests.support.pgbouncer import PgBouncer
from tests.support.receiver import Receiver
from tests.support.stack import Stack

# What a deployment over several hosts sets (docs/scaling.md), scaled down
# like ACCELERATED. A worker host that vanishes mid-transaction holds its row
# locks until its server session is ended: end it soon.
SERVER_SETTINGS = {
    "idle_in_transaction_session_timeout": "5s",
    # the statements' costs for docs/scaling.md (tests/multihost/figures.py)
    "shared_preload_libraries": "pg_stat_statements",
}
CLUSTER_ENV = {
    **FAULT_ENV,
    "DB_TRANSACTION_POOLING": "true",
    # a publish meeting a lost link answers 503 well within a client's 10 s
    "DB_NETWORK_TIMEOUT": "3s",
}


@pytest.fixture(scope="session")
def network() -> Iterator[netns.Network]:
    reason = netns.unavailable()
    if reason:
        pytest.skip(f"multi-host tests need network namespaces: {reason}")
    netns.remove_stale()
    with netns.Network(HOSTS) as net:
        yield net


@pytest.fixture(scope="session")
def host_postgres(network: netns.Network) -> Iterator[PrivatePostgres]:
    with network.inside(DATABASE):
        server = PrivatePostgres(settings=SERVER_SETTINGS)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def host_keys(network: netns.Network, host_postgres: PrivatePostgres) -> Keys:
    with network.inside(DATABASE):
        return migrate_template(host_postgres)


@pytest.fixture
def host_database_url(
    network: netns.Network, host_postgres: PrivatePostgres, host_keys: Keys
) -> Iterator[str]:
    with network.inside(DATABASE):
        name = copy_template(host_postgres)
    try:
        yield host_postgres.url(name)
    finally:
        with network.inside(DATABASE):
            drop_database(host_postgres, name)


@pytest.fixture
def host_bouncer(network: netns.Network, host_database_url: str) -> Iterator[PgBouncer]:
    with network.inside(DATABASE):
        bouncer = PgBouncer(
            upstream=host_database_url,
            pool_size=20,
            host=network.address(DATABASE),
        )
    try:
        yield bouncer
    finally:
        bouncer.close()


@pytest.fixture
def host_redis(network: netns.Network) -> Iterator[PrivateRedis]:
    with network.inside(DATABASE):
        server = PrivateRedis(host=network.address(DATABASE))
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def host_ledger(network: netns.Network) -> Iterator[Receiver]:
    """The receiver on host e, answering 200; each request records its
    sender's address (`cluster.hosts_of(ledger)`)."""
    with network.inside(RECEIVER):
        receiver = Receiver(bind=network.address(RECEIVER))
    with receiver:
        yield receiver


@pytest.fixture
def cluster(
    network: netns.Network,
    host_database_url: str,
    host_bouncer: PgBouncer,
    host_redis: PrivateRedis,
    host_keys: Keys,
    host_ledger: Receiver,
) -> Iterator[Callable[..., Cluster]]:
    """cluster(beat="b", WEBHOOK_X="…") -> the service running: web on host
    a, a webhook to the ledger on e, a worker each on b and c
    (`.workers["c"]`), beat on `beat`."""
    stacks: list[Stack] = []

    def make(beat: str = "b", **overrides: str) -> Cluster:
        stack = Stack(
            database_url=host_bouncer.url(host_database_url),
            redis_url=host_redis.url(),
            env={**CLUSTER_ENV, **overrides},
        )
        stacks.append(stack)
        service = Cluster(
            stack=stack,
            database_url=host_database_url,
            keys=host_keys,
            host=network.address(WEB),
            net=network,
        )
        service.start_web()
        service.create_webhook(host_ledger.url(host=network.address(RECEIVER)))
        for host in WORKERS:
            service.start_worker(host)
        service.start_beat(beat)
        return service

    yield make
    for stack in stacks:
        stack.stop()
    for host in HOSTS:  # the network outlives the test: every cable back in
        network.mend(host)
