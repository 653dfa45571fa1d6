"""The SSRF guard, at subscription creation (validate_destination) and at attempt
time (send): every class of blocked address in several encodings, names that
resolve to them, DNS rebinding, redirects, OAuth2 token URLs."""

import socket

import pytest

from delivery.sender import http as outbound
from delivery.sender.http import send
from delivery.sender.ssrf import (
    BlockedDestination,
    UnresolvableDestination,
    validate_destination,
)
from delivery.sender.types import OAuth2Config, OutboundRequest
from tests.support.raw_server import settle

# (url, what the reason must say). Every class, several spellings each: the
# numeric forms are resolved by the OS resolver, as the HTTP client would.
BLOCKED = [
    # loopback
    ("http://127.0.0.1/", "loopback"),
    ("http://127.1/", "loopback"),
    ("http://2130706433/", "loopback"),
    ("http://0x7f.1/", "loopback"),
    ("http://0x7f000001/", "loopback"),
    ("http://0177.0.0.1/", "loopback"),
    ("http://127.255.255.254:8080/", "loopback"),
    ("http://localhost/", "loopback"),
    ("http://LOCALHOST./", "loopback"),
    ("http://[::1]/", "loopback"),
    ("http://[0:0:0:0:0:0:0:1]/", "loopback"),
    ("http://user:pass@127.0.0.1/", "loopback"),
    # private
    ("http://10.0.0.1/", "private"),
    ("http://012.0.0.1/", "private"),
    ("http://167772161/", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://172.31.255.255/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://0xc0.0xa8.1.1/", "private"),
    ("http://[fc00::1]/", "private"),
    ("http://[fd12:3456:789a::1]/", "private"),
    ("http://[fec0::1]/", "private"),
    # link-local, cloud metadata included
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("http://2852039166/", "cloud metadata"),
    ("http://0xa9.0xfe.0xa9.0xfe/", "cloud metadata"),
    ("http://0251.0376.0251.0376/", "cloud metadata"),
    ("http://169.254.0.1/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fe80::1%25eth0]/", "link-local"),
    ("http://[fd00:ec2::254]/", "cloud metadata"),
    # unspecified
    ("http://0.0.0.0/", "unspecified"),
    ("http://0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    # multicast
    ("http://224.0.0.1/", "multicast"),
    ("http://239.255.255.250/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    # reserved and broadcast
    ("http://240.0.0.1/", "reserved"),
    ("http://255.255.255.255/", "broadcast"),
    ("http://192.0.0.8/", "reserved"),
    ("http://[100::1]/", "reserved"),
    # shared address space (carrier-grade NAT)
    ("http://100.64.0.1/", "shared"),
    ("http://100.127.255.254/", "shared"),
    ("http://1681915905/", "shared"),
    # benchmarking
    ("http://198.18.0.1/", "benchmarking"),
    ("http://198.19.255.255/", "benchmarking"),
    ("http://[2001:2::1]/", "benchmarking"),
    # documentation
    ("http://192.0.2.1/", "documentation"),
    ("http://198.51.100.7/", "documentation"),
    ("http://203.0.113.9/", "documentation"),
    ("http://[2001:db8::1]/", "documentation"),
    ("http://[3fff::1]/", "documentation"),
    # IPv6 forms embedding a blocked IPv4 address
    ("http://[::ffff:127.0.0.1]/", "IPv4-mapped form of 127.0.0.1, a loopback"),
    ("http://[::ffff:7f00:1]/", "IPv4-mapped form of 127.0.0.1, a loopback"),
    ("http://[0:0:0:0:0:ffff:a9fe:a9fe]/", "IPv4-mapped form of 169.254.169.254"),
    ("http://[::ffff:10.0.0.1]/", "IPv4-mapped form of 10.0.0.1, a private"),
    ("http://[::127.0.0.1]/", "IPv4-compatible form of 127.0.0.1, a loopback"),
    ("http://[::a00:1]/", "IPv4-compatible form of 10.0.0.1, a private"),
    ("http://[2002:7f00:1::]/", "6to4 form of 127.0.0.1, a loopback"),
    ("http://[2002:a9fe:a9fe::1]/", "6to4 form of 169.254.169.254"),
    ("http://[64:ff9b::127.0.0.1]/", "NAT64 form of 127.0.0.1, a loopback"),
    ("http://[64:ff9b::a9fe:a9fe]/", "NAT64 form of 169.254.169.254"),
    ("http://[64:ff9b:1::a00:1]/", "local-use NAT64"),
    (
        "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
        "Teredo address embedding 127.0.0.1",
    ),
    (
        "http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/",
        "Teredo address embedding 10.0.0.1",
    ),
    # https is guarded the same way
    ("https://127.0.0.1/", "loopback"),
    ("https://[::ffff:169.254.169.254]:443/", "cloud metadata"),
]


@pytest.mark.ssrf_guard
@pytest.mark.parametrize(("url", "reason"), BLOCKED, ids=[u for u, _ in BLOCKED])
def test_it_refuses_a_blocked_destination_at_creation(url, reason):
    with pytest.raises(BlockedDestination, match=reason):
        validate_destination(url)


@pytest.mark.ssrf_guard
@pytest.mark.parametrize(("url", "reason"), BLOCKED, ids=[u for u, _ in BLOCKED])
def test_it_refuses_a_blocked_destination_at_attempt_time(url, reason):
    result = send(OutboundRequest(url=url, body=b"{}"))

    assert result.status_code is None
    assert result.error.startswith("blocked destination: ")
    assert reason in result.error


@pytest.mark.ssrf_guard
def test_the_reason_names_the_host_and_the_address_it_resolves_to():
    with pytest.raises(BlockedDestination) as caught:
        validate_destination("http://127.1:8080/hooks")
    assert str(caught.value) == "127.1 resolves to 127.0.0.1, a loopback address"

    with pytest.raises(BlockedDestination) as caught:
        validate_destination("https://169.254.169.254/")
    assert str(caught.value) == (
        "169.254.169.254 is a link-local address (cloud metadata service)"
    )


@pytest.mark.ssrf_guard
def test_a_public_address_passes():
    validate_destination("https://93.184.216.34/hooks")
    validate_destination("https://[2606:2800:220:1:248:1893:25c8:1946]/hooks")
    # Transition forms of a public IPv4 address are as public as it is.
    validate_destination("http://[::ffff:93.184.216.34]/")
    validate_destination("http://[2002:5db8:d822::1]/")


@pytest.mark.ssrf_guard
@pytest.mark.parametrize(
    "answers",
    [
        ["10.1.2.3"],
        ["169.254.169.254"],
        ["::1"],
        ["fd00:ec2::254"],
        ["::ffff:127.0.0.1"],
    ],
)
def test_a_name_resolving_to_a_blocked_address_is_refused(fake_dns, answers):
    fake_dns.add("internal.test", answers)

    with pytest.raises(BlockedDestination, match=r"^internal\.test resolves to"):
        validate_destination("https://internal.test/hooks")
    result = send(OutboundRequest(url="https://internal.test/hooks", body=b"{}"))
    assert result.status_code is None
    assert result.error.startswith("blocked destination: internal.test resolves to")


@pytest.mark.ssrf_guard
@pytest.mark.parametrize(
    "answers",
    [
        ["93.184.216.34", "10.0.0.7"],
        ["10.0.0.7", "93.184.216.34"],
        ["2606:2800:220:1:248:1893:25c8:1946", "::1"],
        ["93.184.216.34", "169.254.169.254"],
    ],
)
def test_a_name_with_one_public_and_one_private_address_is_refused(fake_dns, answers):
    fake_dns.add("mixed.test", answers)

    with pytest.raises(BlockedDestination, match="mixed.test resolves to"):
        validate_destination("https://mixed.test/")
    result = send(OutboundRequest(url="https://mixed.test/", body=b"{}"))
    assert result.error.startswith("blocked destination: mixed.test resolves to")


@pytest.mark.ssrf_guard
def test_a_name_with_only_public_addresses_passes(fake_dns):
    fake_dns.add("public.test", ["93.184.216.34", "2606:2800:220:1::1"])

    validate_destination("https://public.test/hooks")


@pytest.mark.ssrf_guard
def test_a_name_that_does_not_resolve_is_refused_with_a_clear_reason(fake_dns):
    with pytest.raises(UnresolvableDestination, match="nowhere.invalid does not"):
        validate_destination("https://nowhere.invalid/")

    result = send(OutboundRequest(url="https://nowhere.invalid/", body=b"{}"))
    assert result.error == "dns: nowhere.invalid does not resolve"


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/", "file:///etc/passwd", "gopher://127.0.0.1:6379/_", "//x"],
)
def test_only_http_and_https_are_allowed_even_with_the_guard_lifted(url):
    with pytest.raises(BlockedDestination, match="only http and https"):
        validate_destination(url)
    assert send(OutboundRequest(url=url, body=b"")).error.startswith(
        "blocked destination: only http and https"
    )


def test_a_url_without_host_or_with_a_bad_port_is_refused():
    with pytest.raises(BlockedDestination, match="no host"):
        validate_destination("http:///hooks")
    with pytest.raises(BlockedDestination, match="invalid URL"):
        validate_destination("http://example.com:99999/")


def test_lifting_the_guard_allows_local_destinations(receiver):
    # (The autouse fixture sets WEBHOOK_ALLOW_PRIVATE_DESTINATIONS=True.)
    validate_destination("http://127.0.0.1/")
    validate_destination("http://10.0.0.1/")

    result = send(OutboundRequest(url=receiver.url(), body=b"{}"))
    assert result.status_code == 200
    assert len(receiver.requests()) == 1


@pytest.mark.ssrf_guard
def test_a_listener_on_loopback_gets_zero_connections_while_the_guard_is_on(
    listener, fake_dns
):
    port = listener.port
    fake_dns.add("rebind.test", ["127.0.0.1"])
    fake_dns.add("mixed.test", ["93.184.216.34", "127.0.0.1"])
    hosts = [
        "127.0.0.1",
        "127.1",
        "2130706433",
        "0x7f.1",
        "0x7f000001",
        "0177.0.0.1",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "localhost",
        "rebind.test",
        "mixed.test",
    ]
    results = [
        send(OutboundRequest(url=f"{scheme}://{host}:{port}/hook", body=b"{}"))
        for host in hosts
        for scheme in ("http", "https")
    ]
    oauth2 = OAuth2Config(
        token_url=f"https://127.0.0.1:{port}/token",
        client_id="abc",
        client_secret="s3cr3t",
    )
    results.append(
        send(
            OutboundRequest(url="https://93.184.216.34/hook", body=b"{}", oauth2=oauth2)
        )
    )
    settle()

    assert listener.accepted == 0
    assert all(r.status_code is None for r in results)
    assert all("blocked destination: " in r.error for r in results)


@pytest.mark.ssrf_guard
def test_a_blocked_token_url_fails_the_attempt_before_anything_is_sent(
    listener, fake_dns
):
    fake_dns.add("idp.test", ["10.20.30.40"])
    for token_url in (
        "http://169.254.169.254/token",
        "https://idp.test/oauth/token",
        f"https://0x7f.1:{listener.port}/token",
    ):
        with pytest.raises(BlockedDestination):
            validate_destination(token_url)
        oauth2 = OAuth2Config(token_url=token_url, client_id="abc", client_secret="x")

        result = send(
            OutboundRequest(
                url=f"http://127.0.0.1:{listener.port}/hook", body=b"{}", oauth2=oauth2
            )
        )

        assert result.status_code is None
        assert result.error.startswith("oauth2 token: blocked destination: ")
    settle()
    assert listener.accepted == 0


def _redirect_to(location: str):
    def reply(received):
        return 301, {"Location": location}, b"moved"

    return reply


def test_a_redirect_to_an_internal_address_is_not_followed(start_receiver, listener):
    receiver = start_receiver(_redirect_to(f"http://127.0.0.1:{listener.port}/x"))

    result = send(OutboundRequest(url=receiver.url(), body=b"{}"))
    settle()

    assert result.status_code == 301
    assert result.error is None
    assert len(receiver.requests()) == 1
    assert listener.accepted == 0


@pytest.mark.ssrf_guard
def test_a_redirect_to_the_metadata_service_is_not_followed_with_the_guard_on(
    start_receiver, exempt_loopback, listener
):
    receiver = start_receiver(_redirect_to("http://169.254.169.254/latest/meta-data/"))

    result = send(OutboundRequest(url=receiver.url(), body=b"{}"))

    assert result.status_code == 301
    assert len(receiver.requests()) == 1


# --- pinning: the connection goes to the address that was vetted ----------------


@pytest.mark.ssrf_guard
def test_the_connection_goes_to_the_vetted_address_not_a_second_dns_answer(
    fake_dns, monkeypatch, listener
):
    # First answer public, every later one loopback: a rebinding attack.
    fake_dns.add("rebind.test", ["93.184.216.34"], ["127.0.0.1"])
    connected: list[tuple] = []

    def refuse(addresses, **kwargs):
        connected.extend(addresses)
        raise ConnectionRefusedError  # (never really contact the public address)

    monkeypatch.setattr(outbound, "_open_socket", refuse)

    result = send(
        OutboundRequest(url=f"http://rebind.test:{listener.port}/hook", body=b"{}")
    )
    settle()

    assert connected == [(socket.AF_INET, ("93.184.216.34", listener.port))]
    assert fake_dns.lookups == ["rebind.test"]
    assert result.error == "connection refused"
    assert listener.accepted == 0


@pytest.mark.ssrf_guard
def test_a_request_reaches_the_vetted_address_even_if_dns_changes_after_the_check(
    fake_dns, exempt_loopback, receiver
):
    # 127.0.0.1 is allowed for this test, 10.0.0.1 is not: if the name were
    # resolved a second time for connecting, the request could not arrive.
    fake_dns.add("service.test", ["127.0.0.1"], ["10.0.0.1"])

    result = send(
        OutboundRequest(url=f"http://service.test:{receiver.port}/hook", body=b"{}")
    )

    assert result.status_code == 200
    assert fake_dns.lookups == ["service.test"]
    assert receiver.requests()[0].headers["Host"] == f"service.test:{receiver.port}"


@pytest.mark.ssrf_guard
def test_every_attempt_is_vetted_again_even_with_a_pooled_connection_open(
    fake_dns, exempt_loopback, receiver
):
    fake_dns.add("service.test", ["127.0.0.1"], ["127.0.0.1"], ["10.0.0.1"])
    url = f"http://service.test:{receiver.port}/hook"

    first = send(OutboundRequest(url=url, body=b"{}"))
    second = send(OutboundRequest(url=url, body=b"{}"))
    third = send(OutboundRequest(url=url, body=b"{}"))

    assert (first.status_code, second.status_code) == (200, 200)
    assert receiver.connections == 1  # keep-alive: the second reused the first
    assert third.status_code is None
    assert third.error == (
        "blocked destination: service.test resolves to 10.0.0.1, a private address"
    )
    assert len(receiver.requests()) == 2


@pytest.mark.ssrf_guard
def test_a_connection_opened_with_the_guard_lifted_is_not_reused_once_it_is_on(
    receiver, settings, exempt_loopback
):
    settings.WEBHOOK_ALLOW_PRIVATE_DESTINATIONS = True
    assert send(OutboundRequest(url=receiver.url(), body=b"{}")).status_code == 200

    settings.WEBHOOK_ALLOW_PRIVATE_DESTINATIONS = False
    result = send(OutboundRequest(url=receiver.url(), body=b"{}"))

    # Vetted and sent over a new, pinned connection (separate pools per mode).
    assert result.status_code == 200
    assert receiver.connections == 2
