"""The service behind PgBouncer in transaction pooling mode (docs/deploy.md,
"PgBouncer"): web, workers and beat reach the private PostgreSQL only through
a private PgBouncer with a small pool, so every client's transactions take
turns on the same few server sessions. Publishing, delivery, retries and the
no-event-lost faults hold as they do on a direct connection, and a worker's
`synchronous_commit = off` never reaches anyone else's transaction.
"""

from collections.abc import Callable

import pytest

from tests.faults.service import (
    FaultService,
    acknowledged_attempts,
    kill_a_worker_mid_request,
    settle,
)
from tests.support.pgbouncer import PgBouncer
from tests.support.receiver import Reply
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def pooled_service(
    fault_service: Callable[..., FaultService],
    fault_database_url: str,
    start_pgbouncer: Callable[..., PgBouncer],
) -> Callable[..., tuple[FaultService, PgBouncer]]:
    """pooled_service(pool_size=4, **env) -> (the service with every process
    connected through a PgBouncer, that PgBouncer). `service.query` still
    reads the database directly."""

    def make(pool_size: int = 4, **env: str) -> tuple[FaultService, PgBouncer]:
        bouncer = start_pgbouncer(upstream=fault_database_url, pool_size=pool_size)
        service = fault_service(
            DATABASE_URL=bouncer.url(fault_database_url),
            DB_TRANSACTION_POOLING="true",
            **env,
        )
        return service, bouncer

    return make


def test_events_published_through_pgbouncer_are_delivered_once(pooled_service, ledger):
    service, bouncer = pooled_service()
    service.create_webhook(ledger.url())
    service.stack.start_worker(name="first")
    service.stack.start_worker(name="second")
    service.stack.start_beat()

    publisher = service.publisher(count=300, per_second=100).start()

    outcome = settle(service, ledger, publisher, name="through pgbouncer")
    assert outcome.refused == 0
    assert outcome.duplicates == 0
    assert acknowledged_attempts(service) == outcome.published
    # The connection budget: every process's connections, over 4 servers.
    database = service.database_url.rsplit("/", 1)[1]
    clients = [c for c in bouncer.show("CLIENTS") if c["database"] == database]
    (pool,) = [p for p in bouncer.show("POOLS") if p["database"] == database]
    (stats,) = [s for s in bouncer.show("STATS") if s["database"] == database]
    servers = pool["sv_active"] + pool["sv_idle"] + pool["sv_used"]
    print(
        f"pgbouncer: {len(clients)} client connections (web 1x4 threads, 2 "
        f"workers x4 threads, beat) over {servers} server connections; "
        f"{stats['total_xact_count']} transactions, average wait for a server "
        f"{stats['total_wait_time'] / max(stats['total_xact_count'], 1):.0f} us "
        "per transaction"
    )
    assert len(clients) > servers and 0 < servers <= 4


def test_retries_through_pgbouncer_end_in_success(pooled_service, ledger):
    ledger.script("/hooks", *[Reply(503)] * 30, Reply(200))
    service, _ = pooled_service()
    service.create_webhook(ledger.url())
    service.stack.start_worker()
    service.stack.start_beat()

    publisher = service.publisher(count=60, per_second=60).start()

    outcome = settle(service, ledger, publisher, name="retries through pgbouncer")
    failures = service.query(
        "SELECT count(*) FROM delivery_attempt WHERE outcome = 'failure'"
    )[0][0]
    assert failures == 30
    assert acknowledged_attempts(service) == outcome.published


def test_a_worker_killed_mid_request_behind_pgbouncer_loses_no_event(
    pooled_service, ledger
):
    # its open transaction, if any, is PgBouncer's to end
    service, _ = pooled_service()
    kill_a_worker_mid_request(service, ledger, name="worker killed behind pgbouncer")


def test_restarting_pgbouncer_mid_burst_loses_no_accepted_event(pooled_service, ledger):
    service, bouncer = pooled_service()
    service.create_webhook(ledger.url())
    service.stack.start_worker()
    service.stack.start_beat()
    publisher = service.publisher(count=200, per_second=50).start()

    publisher.wait_for(60)
    bouncer.restart()  # every client connection is cut, the port comes back

    outcome = settle(service, ledger, publisher, name="pgbouncer restarted")
    # a publish cut mid-way answers a clean 503 (settle: nothing unexpected)
    assert outcome.published + outcome.refused == 200


# The web process's code path, in a process that is not a Celery worker:
# publish in a transaction and read the setting that transaction commits with.
PUBLISH_AND_SHOW = """
from django.db import connection, transaction
from events.services import publish_event
from subscriptions.models import Client
publisher = Client.objects.get(name="platform")
seen = set()
for n in range({count}):
    with transaction.atomic():
        publish_event(publisher=publisher, type="DELIVERED", payload={{"n": n}},
                      tenant="acme")
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            seen.add(cursor.fetchone()[0])
print(",".join(sorted(seen)))
"""


def test_publishing_never_commits_with_a_workers_synchronous_commit_off(
    pooled_service, ledger
):
    # One server connection: the worker's transactions and the publishes
    # take turns on the same PostgreSQL session.
    service, _ = pooled_service(pool_size=1)
    service.create_webhook(ledger.url())
    service.stack.start_worker()
    service.stack.start_beat()
    service.stack.run_python(PUBLISH_AND_SHOW.format(count=20))
    ledger.wait_for(20)  # the worker has used the session since

    seen = service.stack.run_python(PUBLISH_AND_SHOW.format(count=100), timeout=60)

    assert seen.strip() == "on"
    wait_until(lambda: len(ledger.counts()) == 120, message="the 120 deliveries")
    assert ledger.duplicates() == 0
