"""The service spread over hosts (network namespaces, tests/multihost/netns.py):

    a  web (gunicorn); the publisher and the checks' HTTP calls run here too
    b  a Celery worker, and beat
    c  a Celery worker
    d  PostgreSQL (on d's loopback: the others reach it through PgBouncer),
       PgBouncer and the broker (redis-server); the checks' SQL runs here
    e  the receiver (the ledger, in the pytest process)

Every process of the service reaches the others over the switch only, at
their 198.18.0.x addresses, so cutting a host's link cuts exactly what a
pulled cable would.
"""

import contextlib
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.faults.service import FaultService, Outcome, Publisher
from tests.multihost.netns import Network
from tests.support.receiver import Receiver
from tests.support.stack import ServiceProcess

HOSTS = ["a", "b", "c", "d", "e"]
WEB, WORKERS, DATABASE, RECEIVER = "a", ("b", "c"), "d", "e"


@dataclass
class Cluster(FaultService):
    net: Network = field(kw_only=True)
    workers: dict[str, ServiceProcess] = field(default_factory=dict, kw_only=True)

    def start_web(self) -> ServiceProcess:
        with self.net.inside(WEB):
            return super().start_web()

    def create_webhook(self, url: str) -> str:
        with self.net.inside(WEB):
            return super().create_webhook(url)

    def start_publisher(self, **options: Any) -> Publisher:
        """A publisher thread (`publisher(**options)`) on host a: a thread
        stays on the host it was started on."""
        with self.net.inside(WEB):
            return self.publisher(**options).start()

    def start_worker(self, host: str, **options: Any) -> ServiceProcess:
        with self.net.inside(host):
            worker = self.stack.start_worker(name=f"worker-{host}", **options)
        self.workers[host] = worker
        return worker

    def start_beat(self, host: str) -> ServiceProcess:
        with self.net.inside(host):
            return self.stack.start_beat(name=f"beat-{host}")

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with self.net.inside(DATABASE):
            return super().query(sql, *params)

    def arrivals_from(self, ledger: Receiver, host: str) -> dict[str, float]:
        """When each webhook-id first arrived from `host` (time.time())."""
        address = self.net.address(host)
        first: dict[str, float] = {}
        for request in ledger.requests():
            if request.client == address:
                first.setdefault(request.headers.get("webhook-id", ""), request.at)
        return first

    def sent_by(self, ledger: Receiver, host: str) -> set[str]:
        """The webhook-ids the receiver got at least once from `host`."""
        return set(self.arrivals_from(ledger, host))

    def hosts_of(self, ledger: Receiver) -> Counter[str]:
        """Requests the receiver got, by the host that sent them."""
        host_at = {address: host for host, address in self.net.addresses.items()}
        return Counter(host_at.get(r.client, r.client) for r in ledger.requests())


@contextlib.contextmanager
def timed() -> Iterator[list[float]]:
    """with timed() as took: ...; took[0] is the block's duration in seconds."""
    took: list[float] = []
    started = time.monotonic()
    try:
        yield took
    finally:
        took.append(time.monotonic() - started)


def report(
    cluster: Cluster, ledger: Receiver, outcome: Outcome, *, name: str, seconds: float
) -> Counter[str]:
    """The scenario's closing note: published / received / missing /
    duplicated, requests by sending host, and how long it took."""
    by_host = cluster.hosts_of(ledger)
    missing = outcome.published - outcome.received
    print(
        f"multihost {name}: published {outcome.published}, received "
        f"{outcome.received}, missing {missing}, duplicated {outcome.duplicates}; "
        f"requests by host {dict(sorted(by_host.items()))}; "
        f"refused with 503 {outcome.refused}; {seconds:.1f} s"
    )
    return by_host
