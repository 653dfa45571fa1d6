"""delivery.sender.http.send against hostile and broken receivers: every outcome is a
SendResult within the deadline, with a short error that names no secret."""

import gzip
import socket
import threading
import time
import tracemalloc
from datetime import timedelta

import pytest

from delivery.sender.http import send
from delivery.sender.types import OutboundRequest
from tests.support.ports import free_port
from tests.support.raw_server import (
    flood_of,
    not_tls,
    read_request_head,
    reset_connection,
    settle,
    trickle_body,
    trickle_headers,
)


@pytest.fixture
def short_timeout(settings):
    settings.WEBHOOK_TIMEOUT = timedelta(seconds=1)
    settings.WEBHOOK_CONNECT_TIMEOUT = timedelta(seconds=1)


def post(url: str, **kwargs) -> tuple:
    started = time.monotonic()
    result = send(OutboundRequest(url=url, body=b'{"id": "1"}', **kwargs))
    return result, time.monotonic() - started


def test_a_receiver_that_never_answers_times_out_at_the_deadline(
    start_raw_server, short_timeout
):
    def hang(conn, server):
        read_request_head(conn)
        server.stop.wait(10)

    server = start_raw_server(hang)

    result, took = post(server.url())

    assert result.status_code is None
    assert result.error == "timeout: no response in 1.0 s"
    assert 0.9 <= took < 1.8
    assert 900 <= result.duration_ms < 1800


def test_a_receiver_trickling_its_headers_cannot_outlast_the_deadline(
    start_raw_server, short_timeout
):
    server = start_raw_server(trickle_headers)

    result, took = post(server.url())

    assert result.status_code is None
    assert result.error == "timeout: no response in 1.0 s"
    assert took < 1.8


def test_a_receiver_trickling_its_body_is_cut_at_the_deadline_keeping_the_status(
    start_raw_server, short_timeout
):
    server = start_raw_server(trickle_body)

    result, took = post(server.url())

    assert result.status_code == 200
    assert result.response_excerpt.startswith("started .")
    assert took < 1.8


def test_a_50_megabyte_answer_is_read_only_up_to_the_excerpt_cap(
    start_raw_server, settings
):
    settings.WEBHOOK_RESPONSE_EXCERPT_BYTES = 4096
    size = 50 * 1024 * 1024

    server = start_raw_server(flood_of(size))

    tracemalloc.start()
    try:
        result, took = post(server.url())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    settle()

    assert result.status_code == 200
    assert result.response_excerpt == "A" * 4096
    assert peak < 2 * 1024 * 1024
    assert took < 2
    # The connection was closed, not drained: most of the 50 MB never left.
    assert server.bytes_sent < size // 2


def test_invalid_utf8_and_nul_bytes_in_the_answer_are_replaced(start_receiver):
    receiver = start_receiver(
        lambda received: (500, {}, b"bad \xff\xfe bytes \x00 and a cut \xc3")
    )

    result, _ = post(receiver.url())

    assert result.status_code == 500
    assert result.response_excerpt == "bad \ufffd\ufffd bytes \ufffd and a cut \ufffd"


def test_a_multibyte_character_cut_by_the_cap_is_dropped(start_receiver, settings):
    settings.WEBHOOK_RESPONSE_EXCERPT_BYTES = 5
    receiver = start_receiver(lambda received: (200, {}, "abcdé and more".encode()))

    result, _ = post(receiver.url())

    assert result.response_excerpt == "abcd"


def test_a_connection_reset_is_reported_as_such(start_raw_server):
    server = start_raw_server(reset_connection)

    result, _ = post(server.url())

    assert result.status_code is None
    assert result.error == "connection reset"
    assert result.transport_failure is True


def test_a_connection_closed_without_an_answer_is_reported(start_raw_server):
    def close(conn, server):
        read_request_head(conn)
        conn.shutdown(socket.SHUT_RDWR)

    server = start_raw_server(close)

    result, _ = post(server.url())

    assert result.error == "connection closed without a response"


def test_a_refused_connection_is_reported_without_the_url():
    port = free_port()

    result, _ = post(f"http://127.0.0.1:{port}/hook?token=hunter2")

    assert result.status_code is None
    assert result.error == "connection refused"
    assert result.transport_failure is True


def test_a_header_that_is_not_latin_1_is_our_failure_not_the_destinations(receiver):
    result, _ = post(
        receiver.url("/hooks"), headers={"Content-Type": "application/json✓"}
    )

    assert result.status_code is None
    assert result.error == "invalid request: cannot encode (UnicodeEncodeError)"
    assert result.transport_failure is False
    assert receiver.requests() == []


def test_an_answer_that_is_not_http_is_reported(start_raw_server):
    def garbage(conn, server):
        read_request_head(conn)
        conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
        conn.close()

    server = start_raw_server(garbage)

    result, _ = post(server.url())

    assert result.status_code is None
    assert result.error == "invalid HTTP response"


def test_a_tls_handshake_failure_is_a_tls_error(start_raw_server, short_timeout):
    server = start_raw_server(not_tls)

    result, took = post(server.url(scheme="https"))

    assert result.status_code is None
    assert result.error.startswith("tls: handshake failed")
    assert took < 1.8


def test_the_retry_after_header_is_passed_on(start_receiver):
    receiver = start_receiver(lambda received: (429, {"Retry-After": "120"}, b""))

    result, _ = post(receiver.url())

    assert (result.status_code, result.retry_after) == (429, "120")


def test_it_sends_the_body_and_headers_as_given_over_a_kept_alive_connection(
    receiver,
):
    headers = {"Content-Type": "application/json", "x-protection-header": "v"}

    first, _ = post(receiver.url(), headers=headers)
    second, _ = post(receiver.url(), headers=headers)

    assert (first.status_code, second.status_code) == (200, 200)
    assert receiver.connections == 1
    received = receiver.requests()[0]
    assert received.body == b'{"id": "1"}'
    assert received.headers["x-protection-header"] == "v"
    assert received.headers["Content-Type"] == "application/json"
    assert headers == {"Content-Type": "application/json", "x-protection-header": "v"}


def test_it_sends_the_path_and_query_string_as_given(receiver):
    result, _ = post(receiver.url("/hooks/in?tenant=a%20b&x=1"))

    assert result.status_code == 200
    assert receiver.requests()[0].target == "/hooks/in?tenant=a%20b&x=1"


def test_it_asks_for_no_compression_so_the_excerpt_is_readable(start_receiver):
    # A receiver that compresses whenever the client allows it: the excerpt
    # is stored as it arrives (never decoded), so it must not be gzip bytes.
    def reply(received):
        if "gzip" in received.headers.get("Accept-Encoding", ""):
            return 200, {"Content-Encoding": "gzip"}, gzip.compress(b"ok")
        return 200, {}, b"ok"

    receiver = start_receiver(reply)

    result, _ = post(receiver.url())

    assert (result.status_code, result.response_excerpt) == (200, "ok")


def test_it_does_not_keep_cookies_between_requests(start_receiver):
    receiver = start_receiver(
        lambda received: (200, {"Set-Cookie": "session=tenant-a; Path=/"}, b"")
    )

    post(receiver.url())
    post(receiver.url())

    assert all("Cookie" not in r.headers for r in receiver.requests())


def test_it_is_safe_to_call_from_many_threads_at_once(receiver):
    results = []
    lock = threading.Lock()

    def worker():
        for _ in range(25):
            result, _ = post(receiver.url())
            with lock:
                results.append(result.status_code)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert results == [200] * 200
    assert len(receiver.requests()) == 200


@pytest.mark.parametrize(
    "url", ["http://[::1", "http://exa mple.com/", "", "http://127.0.0.1:0/"]
)
def test_it_never_raises_on_a_malformed_url(url):
    result, _ = post(url)

    assert result.status_code is None
    assert result.error
