"""Traffic under fault: while a publisher thread posts events to the real web
process, a fault is injected into the real processes or their private
PostgreSQL and Redis. Whatever happens, every event answered 202 reaches the
ledger receiver, no delivery is left unfinished, and nothing is sent twice
except where a request was cut mid-way (a killed worker: at-least-once).
"""

import pytest

from tests.faults.service import settle
from tests.integration.waiting import wait_until

pytestmark = pytest.mark.integration


def test_a_worker_killed_mid_request_loses_no_event(fault_service, ledger):
    ledger.delay = 0.2  # requests are in flight when the worker dies
    service = fault_service()
    service.create_webhook(ledger.url())
    doomed = service.stack.start_worker(name="doomed")
    service.stack.start_beat()
    publisher = service.publisher(count=150, per_second=50).start()

    publisher.wait_for(50)
    wait_until(lambda: ledger.counts(), message="requests in flight")
    doomed.kill()
    service.stack.start_worker(name="survivor")

    outcome = settle(service, ledger, publisher, name="worker killed")
    # resent only what the dead worker had in flight (at most its batch)
    assert outcome.duplicates <= 100
