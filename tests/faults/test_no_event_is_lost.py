"""Traffic under fault: while a publisher thread posts events to the real web
process, a fault is injected into the real processes or their private
PostgreSQL and Redis. Whatever happens, every event answered 202 reaches the
ledger receiver, no delivery is left unfinished, and nothing is sent twice
except where a request was cut mid-way (a killed worker: at-least-once).
"""

import pytest

from tests.faults.service import (
    acknowledged_attempts,
    kill_a_worker_mid_request,
    settle,
)
from tests.support.receiver import Reply
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


def test_a_worker_killed_mid_request_loses_no_event(fault_service, ledger):
    kill_a_worker_mid_request(fault_service(), ledger, name="worker killed")


def test_publishing_while_redis_is_down_answers_202_and_loses_no_event(
    fault_service, ledger, private_redis
):
    service = fault_service()
    service.create_webhook(ledger.url())
    service.stack.start_worker()
    service.stack.start_beat()
    publisher = service.publisher(count=200, per_second=40).start()

    publisher.wait_for(40)
    private_redis.stop()
    before = publisher.answered
    publisher.wait_for(before + 80)  # two seconds of publishing into the outage
    private_redis.start()

    outcome = settle(service, ledger, publisher, name="redis down")
    # the rows are committed without the broker: nothing was refused
    assert outcome.refused == 0
    assert outcome.duplicates == 0


def test_flushing_redis_loses_no_event(fault_service, ledger, private_redis):
    service = fault_service()
    service.create_webhook(ledger.url())
    worker = service.stack.start_worker(name="first")
    service.stack.start_beat()
    publisher = service.publisher(count=200, per_second=50).start()

    publisher.wait_for(50)
    worker.stop()  # wake-ups now queue up in Redis
    publisher.wait_for(100)
    queued = private_redis.client().llen("celery")
    private_redis.flush()
    service.stack.start_worker(name="second")
    publisher.wait_for(150)
    private_redis.flush()

    outcome = settle(service, ledger, publisher, name="redis flushed")
    assert queued > 0  # the flush did throw wake-ups away
    assert outcome.duplicates == 0


def test_restarting_postgresql_loses_no_accepted_event(
    fault_service, ledger, private_postgres
):
    service = fault_service()
    service.create_webhook(ledger.url())
    workers = [service.stack.start_worker(name="worker")]
    beat = service.stack.start_beat()
    publisher = service.publisher(count=200, per_second=40).start()

    publisher.wait_for(50)
    private_postgres.restart()  # every connection is cut
    publisher.wait_for(90)
    private_postgres.stop()
    before = publisher.answered
    publisher.wait_for(before + 20)  # publishes into the outage
    private_postgres.start()

    outcome = settle(service, ledger, publisher, name="postgresql restarted")
    # refused while down, in the error envelope (never an HTML 500)
    assert outcome.refused > 0
    assert outcome.duplicates == 0
    # reconnected, no crash loop: every process is the one started
    for process in [service.web, beat, *workers]:
        assert process.process.poll() is None, process.log()[-3000:]


def test_the_same_task_message_delivered_twice_makes_one_attempt(fault_service, ledger):
    # both copies run while the first one's requests are out
    ledger.default = Reply(delay=0.3)
    service = fault_service(WEBHOOK_BATCH_SIZE="200")
    service.create_webhook(ledger.url())
    publisher = service.publisher(count=100, per_second=100).start()
    publisher.wait_for(100)
    send_twice = """
from webhooks_project.celery import app
for _ in range(2):
    app.send_task("delivery.tasks.deliver_due", task_id="same-message")
"""
    service.stack.run_python(send_twice)
    # Only the duplicated message may wake anyone: the web's wake-ups are
    # dropped (kombu LPUSHes, so the two newest are at the head of the list).
    service.stack.run_python("""
from webhooks_project.celery import app
with app.connection_for_write() as connection:
    connection.default_channel.client.ltrim("celery", 0, 1)
""")
    first = service.stack.start_worker(name="first", concurrency=4)
    second = service.stack.start_worker(name="second", concurrency=4)
    service.stack.start_beat()

    outcome = settle(service, ledger, publisher, name="same message twice")
    service.stack.run_python(send_twice)  # a redelivery after the work is done
    wait_until(
        lambda: (first.log() + second.log()).count("[same-message] succeeded") >= 4,
        message="the four copies to run",
    )
    assert outcome.duplicates == 0
    assert acknowledged_attempts(service) == outcome.published


def test_killing_and_restarting_beat_loses_no_event(
    fault_service, ledger, private_redis
):
    service = fault_service()
    service.create_webhook(ledger.url())
    worker = service.stack.start_worker(name="first")
    beat = service.stack.start_beat(name="beat")
    publisher = service.publisher(count=200, per_second=50).start()

    publisher.wait_for(50)
    beat.kill()
    worker.stop()
    publisher.wait_for(120)
    private_redis.flush()  # no wake-up left, no sweeper: only beat can recover
    service.stack.start_worker(name="second")
    service.stack.start_beat(name="beat")  # the same schedule file and pidfile

    outcome = settle(service, ledger, publisher, name="beat killed")
    assert outcome.duplicates == 0


def test_two_workers_racing_for_the_same_due_rows_send_each_once(fault_service, ledger):
    # small batches: many claims at once in both workers, over the same rows
    service = fault_service(WEBHOOK_BATCH_SIZE="5")
    service.create_webhook(ledger.url())
    publisher = service.publisher(count=300, per_second=100).start()
    publisher.wait_for(150)  # a backlog of due rows before anyone claims
    service.stack.start_worker(name="first", concurrency=8)
    service.stack.start_worker(name="second", concurrency=8)
    service.stack.start_beat()

    outcome = settle(service, ledger, publisher, name="two workers racing")
    assert outcome.duplicates == 0
    assert acknowledged_attempts(service) == outcome.published
