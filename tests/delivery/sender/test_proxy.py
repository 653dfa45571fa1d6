"""The egress proxy (delivery/sender/proxy.py, WEBHOOK_EGRESS_PROXY): every
delivery and token request tunnels through a real CONNECT proxy on loopback
(tests/support/connect_proxy.py) to the address the SSRF guard vetted; a
destination the guard refuses never reaches the proxy; WEBHOOK_NO_PROXY
bypasses it; its refusals are clean attempt failures."""

import base64
import socket

import pytest

from delivery.sender import oauth2, proxy
from delivery.sender.http import send
from delivery.sender.types import OAuth2Config, OutboundRequest
from tests.support.oauth2 import TokenEndpoint
from tests.support.ports import free_port
from webhooks_project import conf


def post(url: str, **kwargs) -> object:
    return send(OutboundRequest(url=url, body=b'{"id": "1"}', **kwargs))


@pytest.fixture
def guarded(settings, fake_dns, exempt_loopback):
    """The SSRF guard on, letting 127.0.0.1 through; `service.test` (a name
    on the test certificate) resolves to it."""
    settings.WEBHOOK_ALLOW_PRIVATE_DESTINATIONS = False
    fake_dns.add("service.test", ["127.0.0.1"])
    return fake_dns


@pytest.fixture
def egress(settings, start_proxy):
    """A CONNECT proxy on loopback, set as WEBHOOK_EGRESS_PROXY."""
    running = start_proxy()
    settings.WEBHOOK_EGRESS_PROXY = conf.parse_egress_proxy(running.url())
    settings.WEBHOOK_NO_PROXY = ()
    return running


@pytest.mark.ssrf_guard
def test_a_delivery_tunnels_through_the_proxy_to_the_vetted_address(
    guarded, egress, receiver
):
    url = receiver.url("/hooks", host="service.test")

    first = post(url)
    second = post(url)

    assert (first.status_code, second.status_code) == (200, 200)
    # The proxy is asked for the address the guard checked, never the name,
    # so it resolves nothing (and the connection is kept alive: one tunnel).
    assert egress.targets() == [f"127.0.0.1:{receiver.port}"]
    assert [r.method for r in egress.requests] == ["CONNECT"]
    requests = receiver.requests("/hooks")
    assert len(requests) == 2
    assert requests[0].headers["Host"] == f"service.test:{receiver.port}"


@pytest.mark.ssrf_guard
def test_https_delivery_and_its_token_fetch_both_go_through_the_proxy(
    guarded, egress, start_receiver, test_ca
):
    context = test_ca.server_context()
    receiver = start_receiver(tls=context)
    endpoint = TokenEndpoint(start_receiver, context)
    config = OAuth2Config(
        token_url=f"https://service.test:{endpoint.server.port}/oauth/token",
        client_id="abc",
        client_secret="s3cr3t-client",
    )
    try:
        result = post(receiver.url("/hooks", host="service.test"), oauth2=config)
    finally:
        from django.core.cache import cache

        cache.delete(oauth2.cache_key(config))

    assert result.status_code == 200, result.error
    assert len(endpoint.calls) == 1
    (delivered,) = receiver.requests("/hooks")
    assert delivered.headers["Authorization"] == "Bearer tok-1"
    # TLS end to end through the tunnel, verified against service.test.
    assert sorted(egress.targets()) == sorted(
        [f"127.0.0.1:{endpoint.server.port}", f"127.0.0.1:{receiver.port}"]
    )


@pytest.mark.ssrf_guard
@pytest.mark.parametrize("url", ["http://127.0.0.2:{port}/hooks", "http://10.0.0.1/"])
def test_a_destination_the_guard_refuses_never_reaches_the_proxy(
    guarded, egress, receiver, url
):
    result = post(url.format(port=receiver.port))

    assert result.status_code is None
    assert result.error.startswith("blocked destination:")
    assert egress.requests == []


@pytest.mark.ssrf_guard
def test_a_token_url_the_guard_refuses_never_reaches_the_proxy(
    guarded, egress, receiver
):
    config = OAuth2Config(
        token_url="https://169.254.169.254/token", client_id="a", client_secret="s"
    )

    result = post(receiver.url(host="service.test"), oauth2=config)

    assert result.error.startswith("oauth2 token: blocked destination:")
    assert egress.requests == []
    assert receiver.requests() == []


@pytest.mark.ssrf_guard
@pytest.mark.parametrize("no_proxy", ["service.test", ".test", "*", "127.0.0.0/8"])
def test_a_host_in_no_proxy_is_reached_directly(
    guarded, egress, receiver, settings, no_proxy
):
    settings.WEBHOOK_NO_PROXY = conf.parse_no_proxy(f"other.example,{no_proxy}")
    host = "127.0.0.1" if "/" in no_proxy else "service.test"

    result = post(receiver.url("/hooks", host=host))

    assert result.status_code == 200
    assert egress.requests == []
    assert len(receiver.requests("/hooks")) == 1


def test_with_the_guard_lifted_the_tunnel_is_asked_for_the_name(egress, receiver):
    result = post(receiver.url("/hooks", host="localhost"))

    assert result.status_code == 200
    assert egress.targets() == [f"localhost:{receiver.port}"]


def test_the_proxy_credentials_are_sent_and_never_shown(
    settings, start_proxy, receiver
):
    running = start_proxy(refuse=407)
    settings.WEBHOOK_EGRESS_PROXY = conf.parse_egress_proxy(
        running.url("egress%40acme:pr0xy-s3cret")
    )

    result = post(receiver.url())

    (request,) = running.requests
    expected = base64.b64encode(b"egress@acme:pr0xy-s3cret").decode()
    assert request.headers["proxy-authorization"] == f"Basic {expected}"
    assert result.error == "egress proxy: CONNECT answered 407"
    assert result.transport_failure is False
    assert "pr0xy-s3cret" not in repr(settings.WEBHOOK_EGRESS_PROXY)
    assert expected not in repr(settings.WEBHOOK_EGRESS_PROXY)
    assert receiver.requests() == []


@pytest.mark.parametrize("status, destination_failed", [(502, True), (403, False)])
def test_a_refused_tunnel_is_a_clean_failure(
    settings, start_proxy, receiver, status, destination_failed
):
    running = start_proxy(refuse=status)
    settings.WEBHOOK_EGRESS_PROXY = conf.parse_egress_proxy(running.url())

    result = post(receiver.url())

    assert result.status_code is None
    assert result.error == f"egress proxy: CONNECT answered {status}"
    # 502: the proxy could not reach the destination (its breaker counts it);
    # 403: the proxy refused us, not the destination's fault.
    assert result.transport_failure is destination_failed
    assert receiver.requests() == []


def test_an_unreachable_proxy_is_our_failure_not_the_destinations(settings, receiver):
    settings.WEBHOOK_EGRESS_PROXY = conf.parse_egress_proxy(
        f"http://127.0.0.1:{free_port()}"
    )

    result = post(receiver.url())

    assert result.error == "egress proxy: unreachable (Connection refused)"
    assert result.transport_failure is False
    assert receiver.requests() == []


def test_no_proxy_matches_names_their_subdomains_and_addresses(settings):
    settings.WEBHOOK_EGRESS_PROXY = conf.parse_egress_proxy("http://egress:3128")
    settings.WEBHOOK_NO_PROXY = conf.parse_no_proxy(
        "internal.example, .corp.example, 10.0.0.0/8, ::1"
    )

    routed = {
        host: proxy.proxy_for(host) is not None
        for host in (
            "internal.example",
            "hooks.internal.example",
            "corp.example",
            "a.corp.example",
            "notinternal.example",
            "10.2.3.4",
            "11.2.3.4",
            "[::1]",
            "Internal.Example.",
        )
    }

    assert routed == {
        "internal.example": False,
        "hooks.internal.example": False,
        "corp.example": False,
        "a.corp.example": False,
        "notinternal.example": True,
        "10.2.3.4": False,
        "11.2.3.4": True,
        "[::1]": False,
        "Internal.Example.": False,
    }


def test_a_tunnel_carries_plain_http_with_the_connections_socket_options(
    start_proxy, receiver
):
    running = start_proxy()
    nodelay = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    sock = proxy.open_tunnel(
        conf.parse_egress_proxy(running.url()),
        "127.0.0.1",
        receiver.port,
        timeout=5,
        socket_options=[nodelay],
    )
    with sock:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        sock.sendall(
            b"POST /direct HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
            b"Connection: close\r\n\r\n{}"
        )
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk

    assert answer.split(b"\r\n")[0].split(b" ")[:2] == [b"HTTP/1.1", b"200"]
    assert running.targets() == [f"127.0.0.1:{receiver.port}"]
    (received,) = receiver.requests("/direct")
    assert received.body == b"{}"
