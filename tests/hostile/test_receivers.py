"""Hostile receivers through the real stack (a Celery worker and beat, Redis,
PostgreSQL): what each one leaves recorded in Attempt and Delivery, and that
none of them can hold a worker's sender slot or memory. The sender's own
behaviour against them is unit-tested in tests/delivery/sender/test_http.py."""

import pytest

from delivery.models import Delivery
from tests.support.flows import (
    attempts_of,
    create_webhook,
    publish,
    wait_for_delivery,
)
from tests.support.raw_server import (
    HEAD_200,
    flood_of,
    not_tls,
    read_request_head,
    reset_connection,
    settle,
    trickle_body,
    trickle_headers,
)
from tests.support.receiver import Receiver, Reply

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

TIMEOUT_ERROR = "timeout: no response in 1.0 s"


def deliver_once(api, url: str) -> tuple[Delivery, list]:
    """One event to a new webhook at url; the delivery once it is final."""
    webhook = create_webhook(api, url)
    event_id, count = publish(api.client_obj)
    assert count == 1
    delivery = wait_for_delivery(
        event_id, webhook["id"], "succeeded", "failed", "expired", timeout=20
    )
    return delivery, attempts_of(delivery)


def assert_every_attempt_failed_with(attempts, error: str, status_code=None) -> None:
    assert attempts
    for attempt in attempts:
        assert attempt.outcome == "failure"
        assert attempt.status_code == status_code
        assert attempt.error == error
        assert attempt.response_excerpt in (None, "")


def vm_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def test_a_receiver_that_hangs_times_out_and_frees_the_slot_for_healthy_ones(
    worker, api, start_raw_server
):
    def hang(conn, server):
        read_request_head(conn)
        server.stop.wait(30)

    hanging = start_raw_server(hang)
    with Receiver() as healthy:
        stuck = create_webhook(api, hanging.url("/hooks"))
        fine = create_webhook(api, healthy.url("/hooks"))
        # Three events, each to both: more hanging requests than the worker
        # has sender threads (WEBHOOK_HTTP_CONCURRENCY=2).
        events = [publish(api.client_obj, payload={"n": n})[0] for n in range(3)]

        healthy.wait_for(3, timeout=20)
        for event_id in events:
            wait_for_delivery(event_id, fine["id"], "succeeded", timeout=20)
        stuck_deliveries = [
            wait_for_delivery(event_id, stuck["id"], "expired", timeout=20)
            for event_id in events
        ]

    assert hanging.accepted >= 3
    for delivery in stuck_deliveries:
        attempts = attempts_of(delivery)
        assert_every_attempt_failed_with(attempts, TIMEOUT_ERROR)
        assert all(a.duration_ms >= 900 for a in attempts)
        assert delivery.attempts_count == len(attempts)
        assert delivery.delivered_at is None


def test_a_receiver_trickling_its_headers_times_out(worker, api, start_raw_server):
    server = start_raw_server(trickle_headers)

    delivery, attempts = deliver_once(api, server.url("/hooks"))

    assert delivery.status == "expired"
    assert_every_attempt_failed_with(attempts, TIMEOUT_ERROR)


def test_a_receiver_trickling_its_body_is_cut_at_the_deadline_keeping_its_2xx(
    worker, api, start_raw_server
):
    server = start_raw_server(trickle_body)

    delivery, attempts = deliver_once(api, server.url("/hooks"))

    assert delivery.status == "succeeded"
    (attempt,) = attempts
    assert (attempt.outcome, attempt.status_code, attempt.error) == ("ack", 200, None)
    assert attempt.response_excerpt.startswith("started .")


def test_a_50_megabyte_answer_is_capped_and_does_not_grow_the_worker(
    worker, api, start_raw_server, settings
):
    size = 50 * 1024 * 1024

    server = start_raw_server(flood_of(size))
    before = vm_rss_kib(worker.pid)

    delivery, attempts = deliver_once(api, server.url("/hooks"))

    grown_kib = vm_rss_kib(worker.pid) - before
    assert delivery.status == "succeeded"
    (attempt,) = attempts
    assert (attempt.outcome, attempt.status_code, attempt.error) == ("ack", 200, None)
    cap = settings.WEBHOOK_RESPONSE_EXCERPT_BYTES
    assert attempt.response_excerpt == "A" * cap
    assert grown_kib < 10 * 1024, f"worker grew by {grown_kib} KiB"
    # closed, not drained: most of the 50 MB was never sent
    assert server.bytes_sent < size // 2


def test_invalid_utf8_and_nul_in_the_answer_are_stored_replaced(
    worker, api, start_raw_server
):
    body = b"ok \xff\xfe \x00 cut \xc3"

    def answer(conn, server):
        read_request_head(conn)
        conn.sendall(HEAD_200 + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)

    server = start_raw_server(answer)

    delivery, attempts = deliver_once(api, server.url("/hooks"))

    assert delivery.status == "succeeded"
    (attempt,) = attempts
    assert (attempt.outcome, attempt.status_code) == ("ack", 200)
    assert attempt.response_excerpt == "ok \ufffd\ufffd \ufffd cut \ufffd"


def test_a_connection_reset_while_waiting_for_the_answer_is_a_failure(
    worker, api, start_raw_server
):
    server = start_raw_server(reset_connection)

    delivery, attempts = deliver_once(api, server.url("/hooks"))

    assert delivery.status == "expired"
    assert_every_attempt_failed_with(attempts, "connection reset")
    assert len(attempts) == server.accepted


def test_a_tls_handshake_failure_is_a_failure(worker, api, start_raw_server):
    server = start_raw_server(not_tls)

    delivery, attempts = deliver_once(api, server.url("/hooks", scheme="https"))

    assert delivery.status == "expired"
    assert attempts
    for attempt in attempts:
        assert (attempt.outcome, attempt.status_code) == ("failure", None)
        assert attempt.error.startswith("tls: handshake failed")


def test_a_redirect_to_another_host_is_not_followed(worker, api, listener):
    with Receiver() as receiver:
        elsewhere = f"http://localhost:{listener.port}/elsewhere"
        receiver.script("/hooks", Reply(301, b"", headers={"Location": elsewhere}))

        delivery, attempts = deliver_once(api, receiver.url("/hooks"))
        sent = len(receiver.requests("/hooks"))

    assert delivery.status == "expired"
    assert attempts
    for attempt in attempts:
        assert (attempt.outcome, attempt.status_code) == ("failure", 301)
        assert attempt.error is None
    assert sent == len(attempts)
    settle()  # a stray connection would have been accepted by now
    assert listener.accepted == 0
