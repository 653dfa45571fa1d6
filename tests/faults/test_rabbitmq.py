"""The service on RabbitMQ (CELERY_BROKER_URL=amqp://…, docs/deploy.md,
"RabbitMQ") instead of Redis: web, workers and beat on a private vhost of the
machine's RabbitMQ, with the guarantees they have on Redis. Task messages are
acknowledged late, so a worker that dies holding some has them redelivered
(RabbitMQ does so as soon as its connection drops: no visibility timeout),
and a broker that cannot be reached never fails or stalls a publish.
"""

import pytest

from tests.faults.service import (
    acknowledged_attempts,
    kill_a_worker_mid_request,
    settle,
)
from tests.support.rabbitmq import RabbitVhost

pytestmark = pytest.mark.integration


def test_events_are_delivered_through_rabbitmq(fault_service, ledger, rabbitmq_vhost):
    service = fault_service(CELERY_BROKER_URL=rabbitmq_vhost.url())
    service.create_webhook(ledger.url())
    first = service.stack.start_worker(name="first")
    service.stack.start_worker(name="second")
    service.stack.start_beat()

    publisher = service.publisher(count=300, per_second=100).start()

    outcome = settle(service, ledger, publisher, name="rabbitmq")
    assert outcome.refused == 0 and outcome.duplicates == 0
    assert acknowledged_attempts(service) == outcome.published
    assert "amqp://guest:**@" in first.log()  # the worker was on RabbitMQ


def test_a_worker_killed_mid_request_on_rabbitmq_loses_no_event(
    fault_service, ledger, rabbitmq_vhost
):
    # its unacknowledged messages go back to the queue as its connection drops
    service = fault_service(CELERY_BROKER_URL=rabbitmq_vhost.url())
    kill_a_worker_mid_request(service, ledger, name="worker killed on rabbitmq")


def test_a_vanished_rabbitmq_never_fails_a_publish(fault_service, ledger):
    vhost = RabbitVhost()  # its own: deleted mid-test
    try:
        service = fault_service(CELERY_BROKER_URL=vhost.url())
        service.create_webhook(ledger.url())
    finally:
        vhost.close()  # every connection to it is closed, new ones refused

    publisher = service.publisher(count=40, per_second=20).start().join()

    assert not publisher.unexpected and not publisher.refused
    assert len(publisher.accepted) == 40
    assert publisher.slowest < 2.0
    # the rows are committed: a worker on a broker again will find them
    pending = service.query(
        "SELECT count(*) FROM delivery_delivery WHERE status = 'pending'"
    )[0][0]
    assert pending == 40
