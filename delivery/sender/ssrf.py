"""SSRF guard: which destinations webhooks (and OAuth2 token requests) may reach.

A destination is vetted by resolving its host with the OS resolver
(getaddrinfo, so every numeric form the resolver accepts, such as
`2130706433`, `0x7f.1`, `0177.0.0.1` or `127.1`, is judged by the address it
really means) and refusing it if ANY answer is an address that is not
publicly routable. `delivery.http` then connects to the vetted addresses
themselves, never to the name again, so a second DNS answer (DNS rebinding)
cannot differ from the one that was checked.

The lookup has a hard deadline, WEBHOOK_DNS_TIMEOUT: the OS resolver's own
timeouts (several seconds per server, times its retries) would otherwise hold
an API request or a delivery thread for as long as a DNS server black-holes
queries. It runs in a small shared thread pool and is waited for at most the
deadline; a lookup that overruns is abandoned (its thread finishes on its
own) and the destination is unresolvable, our side's failure, not the
receiver's (SendResult.transport_failure stays False).

WEBHOOK_ALLOW_PRIVATE_DESTINATIONS lifts the address check (local development
and tests); the scheme and host checks always apply. WEBHOOK_SSRF_ALLOWLIST
lets through only the listed networks or address:port pairs, however private,
and keeps the check for every other address.
"""

import ipaddress
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedDestination(Exception):
    """The destination may not receive webhooks; str(exc) is a human reason."""


class UnresolvableDestination(BlockedDestination):
    """The host name does not resolve, so it cannot be vetted."""


class ResolutionTimeout(UnresolvableDestination):
    """The resolver did not answer within WEBHOOK_DNS_TIMEOUT."""


@dataclass(frozen=True)
class VettedDestination:
    """A destination that passed the guard, with the addresses to connect to."""

    host: str
    port: int
    # getaddrinfo answers (family, sockaddr), in resolver order. Empty when
    # the guard is lifted: then the HTTP client resolves the name itself.
    addresses: tuple[tuple[int, tuple], ...]


_ALLOWED_SCHEMES = {"http": 80, "https": 443}

# Checked in order, first match wins; a label completes "10.0.0.1 is …".
# Ranges are from the IANA IPv4/IPv6 Special-Purpose Address Registries.
_V4_RANGES: tuple[tuple[ipaddress.IPv4Network, str], ...] = tuple(
    (ipaddress.IPv4Network(net), label)
    for net, label in (
        ("169.254.169.254/32", "a link-local address (cloud metadata service)"),
        ("0.0.0.0/8", "an unspecified ('this network') address"),
        ("127.0.0.0/8", "a loopback address"),
        ("10.0.0.0/8", "a private address"),
        ("172.16.0.0/12", "a private address"),
        ("192.168.0.0/16", "a private address"),
        ("169.254.0.0/16", "a link-local address"),
        ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
        ("198.18.0.0/15", "a benchmarking address"),
        ("192.0.2.0/24", "a documentation address"),
        ("198.51.100.0/24", "a documentation address"),
        ("203.0.113.0/24", "a documentation address"),
        ("192.0.0.0/24", "a reserved (IETF protocol assignments) address"),
        ("192.88.99.0/24", "a reserved (6to4 relay anycast) address"),
        ("224.0.0.0/4", "a multicast address"),
        ("255.255.255.255/32", "a broadcast address"),
        ("240.0.0.0/4", "a reserved address"),
    )
)
_V6_RANGES: tuple[tuple[ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.IPv6Network(net), label)
    for net, label in (
        ("fd00:ec2::254/128", "a private address (cloud metadata service)"),
        ("::/128", "an unspecified address"),
        ("::1/128", "a loopback address"),
        ("fe80::/10", "a link-local address"),
        ("fc00::/7", "a private (unique local) address"),
        ("fec0::/10", "a private (site-local) address"),
        ("ff00::/8", "a multicast address"),
        ("2001:db8::/32", "a documentation address"),
        ("3fff::/20", "a documentation address"),
        ("2001:2::/48", "a benchmarking address"),
        ("64:ff9b:1::/48", "a local-use NAT64 address"),
        ("100::/64", "a reserved (discard-only) address"),
        ("5f00::/16", "a reserved (segment routing) address"),
    )
)
_V4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_V4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
_TEREDO = ipaddress.IPv6Network("2001::/32")


def blocked_reason(ip: IPAddress) -> str | None:
    """Why webhooks may not go to ip ("a loopback address"), or None if they may."""
    if isinstance(ip, ipaddress.IPv4Address):
        for network, label in _V4_RANGES:
            if ip in network:
                return label
        # Anything else IANA marks as not globally reachable.
        return None if ip.is_global else "a reserved address"
    for network, label in _V6_RANGES:
        if ip in network:
            return label
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        form, ipv4 = embedded
        inner = blocked_reason(ipv4)
        if inner:
            return f"{form} form of {ipv4}, {inner}"
        if form == "an IPv4-compatible":
            return "a reserved (deprecated IPv4-compatible) address"
        # A transition form of a public IPv4 address is as public as it.
        return None
    if ip in _TEREDO:
        # Teredo carries a server and an (obfuscated) client IPv4 address;
        # name the private one if there is one. Never a webhook destination.
        for ipv4 in ip.teredo or ():
            inner = blocked_reason(ipv4)
            if inner:
                return f"a Teredo address embedding {ipv4}, {inner}"
        return "a reserved (Teredo tunnel) address"
    return None if ip.is_global else "a reserved address"


def _embedded_ipv4(
    ip: ipaddress.IPv6Address,
) -> tuple[str, ipaddress.IPv4Address] | None:
    """(form, IPv4 address) if ip is an IPv6 transition form embedding one."""
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _V4_MAPPED:
        return "an IPv4-mapped", low32
    if ip in _V4_COMPATIBLE:
        return "an IPv4-compatible", low32
    if ip in _NAT64:
        return "a NAT64", low32
    if ip in _SIX_TO_FOUR:
        return "a 6to4", ip.sixtofour  # type: ignore[return-value]
    return None


def parse_destination(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL; raises BlockedDestination if it
    is not one. The host is lower-case, without IPv6 brackets."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BlockedDestination(f"invalid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in _ALLOWED_SCHEMES:
        raise BlockedDestination(
            f"only http and https URLs are allowed, not {scheme or 'no scheme'!r}"
        )
    host = parts.hostname
    if not host:
        raise BlockedDestination("the URL has no host")
    return scheme, host, port or _ALLOWED_SCHEMES[scheme]


def _allowlisted(ip: IPAddress, port: int) -> bool:
    """Whether WEBHOOK_SSRF_ALLOWLIST names ip (any port, or this one)."""
    return any(
        ip.version == network.version and ip in network and allowed_port in (None, port)
        for network, allowed_port in settings.WEBHOOK_SSRF_ALLOWLIST
    )


# Lookups in flight at once per process. Most answer in milliseconds, so a few
# threads serve a busy worker; the bound only matters while a resolver hangs,
# and then it caps the threads stuck waiting on it (the rest queue, and time
# out at the deadline like the lookup they wait behind).
_RESOLVER_THREADS = 32
_resolver: ThreadPoolExecutor | None = None
_resolver_lock = threading.Lock()


def _resolver_pool() -> ThreadPoolExecutor:
    global _resolver
    with _resolver_lock:
        if _resolver is None:
            _resolver = ThreadPoolExecutor(
                max_workers=_RESOLVER_THREADS, thread_name_prefix="dns"
            )
        return _resolver


def _forget_resolver_pool() -> None:
    # A forked child (gunicorn, Celery prefork) does not inherit the parent's
    # threads: it must start its own pool, not queue work to dead threads.
    global _resolver, _resolver_lock
    _resolver = None
    _resolver_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_resolver_pool)


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _resolve(host: str, lookup: str, port: int) -> list[tuple]:
    """getaddrinfo(lookup), waited for at most WEBHOOK_DNS_TIMEOUT. Raises
    UnresolvableDestination (ResolutionTimeout when the deadline passed)."""
    try:
        if _is_ip_literal(lookup):
            # Parsed, never sent to a DNS server: no deadline (nor thread) needed.
            return socket.getaddrinfo(lookup, port, type=socket.SOCK_STREAM)
        deadline = settings.WEBHOOK_DNS_TIMEOUT.total_seconds()
        future = _resolver_pool().submit(
            socket.getaddrinfo, lookup, port, type=socket.SOCK_STREAM
        )
        try:
            return future.result(timeout=deadline)
        except TimeoutError:
            future.cancel()  # still queued: never run it
            raise ResolutionTimeout(
                f"{host} did not resolve within {deadline:g} s"
            ) from None
    except (OSError, UnicodeError):
        raise UnresolvableDestination(f"{host} does not resolve") from None


def vet_host(host: str, port: int) -> VettedDestination:
    """Resolve host (within WEBHOOK_DNS_TIMEOUT) and check every answer; raise
    BlockedDestination if any is not public, UnresolvableDestination if it
    does not resolve in time. The returned addresses are the ones to connect to."""
    lookup = host[:-1] if host.endswith(".") and len(host) > 1 else host
    answers = _resolve(host, lookup.split("%", 1)[0], port)
    addresses: list[tuple[int, tuple]] = []
    for family, _type, _proto, _name, sockaddr in answers:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        # A scoped IPv6 answer ("fe80::1%eth0") is judged by its address.
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        reason = blocked_reason(ip)
        if reason and not _allowlisted(ip, port):
            subject = f"{ip} is" if host == str(ip) else f"{host} resolves to {ip},"
            raise BlockedDestination(f"{subject} {reason}")
        if (family, sockaddr) not in addresses:
            addresses.append((family, sockaddr))
    if not addresses:
        raise UnresolvableDestination(f"{host} does not resolve")
    return VettedDestination(host=host, port=port, addresses=tuple(addresses))


def vet_destination(url: str) -> VettedDestination:
    """Check url and, unless WEBHOOK_ALLOW_PRIVATE_DESTINATIONS, resolve and vet
    its host. Raises BlockedDestination(reason)."""
    _scheme, host, port = parse_destination(url)
    if settings.WEBHOOK_ALLOW_PRIVATE_DESTINATIONS:
        return VettedDestination(host=host, port=port, addresses=())
    return vet_host(host, port)


def validate_destination(url: str) -> None:
    """Raise BlockedDestination(reason) if url may not receive webhooks.

    Honours WEBHOOK_ALLOW_PRIVATE_DESTINATIONS. Used at subscription creation
    (url and OAuth2 token_url) and at every attempt. The reason reads like
    "127.1 resolves to 127.0.0.1, a loopback address".
    """
    vet_destination(url)
