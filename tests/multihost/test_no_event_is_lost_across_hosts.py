"""The service over five hosts (tests/multihost/cluster.py): web on a, a
worker each on b and c (beat on b), PostgreSQL behind PgBouncer and the
broker on d, the receiver on e. Traffic flows while hosts lose their links;
every event answered 202 reaches the receiver, duplicates only where a host
was cut mid-request. docs/scaling.md has the figures they print.
"""

import time

import pytest

from tests.faults.service import settle, unfinished
from tests.faults.template import FAULT_ENV
from tests.multihost.cluster import DATABASE, report, timed
from tests.multihost.figures import Figures
from tests.support.receiver import Reply
from tests.support.waiting import wait_until
from webhooks_project.conf import parse_duration

pytestmark = pytest.mark.integration

STEADY_EVENTS = 10_000
OUTAGE = 30.0


def test_steady_flow_is_delivered_by_both_worker_hosts(
    cluster, host_ledger, host_bouncer, host_redis, host_postgres
):
    service = cluster()
    figures = Figures(service, host_bouncer, host_redis, host_postgres)
    figures.start()

    with timed() as took:
        publisher = service.start_publisher(
            count=STEADY_EVENTS, per_second=1000, batch=50
        )
        outcome = settle(service, host_ledger, publisher, name="steady", timeout=300)
    by_host = report(service, host_ledger, outcome, name="steady", seconds=took[0])
    figures.print(deliveries=outcome.received)
    assert outcome.duplicates == 0
    # both worker hosts delivered a fair part, and no other host did
    assert set(by_host) == {"b", "c"}
    assert min(by_host.values()) >= 0.1 * sum(by_host.values()), by_host


def test_a_worker_host_cut_mid_burst_is_taken_over_within_the_lease(
    cluster, host_ledger
):
    host_ledger.default = Reply(delay=0.5)  # b has requests out when cut
    # beat on c here: losing beat with its host is the last scenario's
    service = cluster(beat="c")
    publisher = service.start_publisher(count=600, per_second=100)

    with timed() as took:
        publisher.wait_for(200)
        wait_until(lambda: service.sent_by(host_ledger, "b"), message="b sending")
        cut_at = time.time()
        service.net.cut("b")
        outcome = settle(service, host_ledger, publisher, name="b cut", timeout=120)
    report(service, host_ledger, outcome, name="worker host b cut", seconds=took[0])

    # b's requests out at the cut: received, never recorded; c sent them
    # again once b's lease ran out
    orphans = service.sent_by(host_ledger, "b") & service.sent_by(host_ledger, "c")
    from_c = service.arrivals_from(host_ledger, "c")
    taken_over = max(from_c[i] for i in orphans)
    lease = parse_duration(FAULT_ENV["WEBHOOK_CLAIM_LEASE"]).total_seconds()
    print(
        f"multihost worker host b cut: {len(orphans)} events b had out, sent "
        f"again by c {taken_over - cut_at:.1f} s after the cut (lease {lease} s)"
    )
    assert orphans
    assert taken_over - cut_at <= lease + 3.0
    # only what b had sent was sent again
    duplicated = {i for i, n in host_ledger.counts().items() if n > 1}
    assert duplicated <= service.sent_by(host_ledger, "b")
    assert outcome.duplicates <= 100


def test_the_broker_host_unreachable_for_30_s_loses_no_event(cluster, host_ledger):
    service = cluster()
    publisher = service.start_publisher(count=800, per_second=20)

    with timed() as took:
        publisher.wait_for(100)
        service.net.cut("d")  # the broker, and PostgreSQL with it
        time.sleep(OUTAGE)
        service.net.mend("d")
        # every answer was a 202 or a 503 in the error envelope (settle)
        outcome = settle(service, host_ledger, publisher, name="d cut", timeout=180)
    report(service, host_ledger, outcome, name="broker host d cut", seconds=took[0])
    # sent while d was away, recorded never: sent again (at least once)
    assert outcome.duplicates <= 100


def test_pgbouncer_restarted_mid_burst_loses_no_event(
    cluster, host_ledger, host_bouncer
):
    service = cluster()
    publisher = service.start_publisher(count=400, per_second=50)

    with timed() as took:
        publisher.wait_for(150)
        with service.net.inside(DATABASE):
            host_bouncer.restart()  # every client's connection cut at once
        outcome = settle(service, host_ledger, publisher, name="pgbouncer restarted")
    report(service, host_ledger, outcome, name="pgbouncer restarted", seconds=took[0])
    # a publish cut mid-way answers a clean 503 (settle: nothing unexpected)
    assert outcome.published + outcome.refused == 400


def test_beat_host_cut_sweeps_resume_with_a_replacement_beat(
    cluster, host_ledger, host_redis
):
    service = cluster()
    publisher = service.start_publisher(count=150, per_second=50)

    with timed() as took:
        publisher.wait_for(50)
        service.net.cut("b")  # beat and a worker gone
        service.workers["c"].stop()  # wake-ups now queue up in the broker ...
        publisher.join()
        time.sleep(1.0)  # the web's last wake-ups sent (one per 50 ms at most)
        with service.net.inside(DATABASE):
            host_redis.flush()  # ... and are lost: only a sweep finds the rows
        service.start_worker("c")
        stalled = len(unfinished(service))
        time.sleep(4.0)  # past the lease: b's claims are due again, unswept
        assert stalled > 0
        assert len(unfinished(service)) == stalled
        service.start_beat("c")  # the replacement
        outcome = settle(service, host_ledger, publisher, name="beat cut", timeout=60)
    report(service, host_ledger, outcome, name="beat host b cut", seconds=took[0])
    duplicated = {i for i, n in host_ledger.counts().items() if n > 1}
    assert duplicated <= service.sent_by(host_ledger, "b")
