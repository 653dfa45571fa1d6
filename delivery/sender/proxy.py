"""The egress proxy (WEBHOOK_EGRESS_PROXY): which destinations go through it,
and the CONNECT tunnel a connection to them is opened through.

Every connection through the proxy is a CONNECT tunnel, for http
destinations too (no absolute-form forwarding): the proxy only relays bytes,
so the same code path carries both schemes, TLS stays end to end (SNI and
certificate checked against the destination's name, as without a proxy),
and the request's headers and body are never the proxy's to read or rewrite.

The tunnel is asked for the address the SSRF guard vetted (`CONNECT
203.0.113.7:443`), not the name: the proxy resolves nothing, so what it
connects to is what the guard checked (DNS rebinding cannot move it, as
without a proxy), and a destination the guard refuses never reaches the
proxy. Only with the guard lifted (WEBHOOK_ALLOW_PRIVATE_DESTINATIONS) is the
name sent. The proxy itself is the operator's and is not vetted.
"""

import ipaddress
import socket
from collections.abc import Iterable

from django.conf import settings

from webhooks_project.conf import EgressProxy

# A CONNECT answer's head is a status line and a few headers.
MAX_ANSWER_BYTES = 16 * 1024
# The proxy's answers that mean "I could not reach the destination": the
# destination's failure (SendResult.transport_failure), not ours.
_DESTINATION_FAILURES = {502, 503, 504}


class EgressProxyError(Exception):
    """No tunnel; str(exc) is short and names neither the proxy's credentials
    nor the destination's URL."""

    def __init__(self, message: str, *, transport_failure: bool = False) -> None:
        super().__init__(message)
        self.transport_failure = transport_failure


def proxy_for(host: str) -> EgressProxy | None:
    """The proxy to reach `host` through, or None (no proxy, or the host is
    in WEBHOOK_NO_PROXY)."""
    proxy: EgressProxy | None = settings.WEBHOOK_EGRESS_PROXY
    if proxy is None:
        return None
    host = host.strip("[]").rstrip(".").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in settings.WEBHOOK_NO_PROXY:
        if entry == "*":
            return None
        if isinstance(entry, str):
            if host == entry or host.endswith("." + entry):
                return None
        elif address is not None and address.version == entry.version:
            if address in entry:
                return None
    return proxy


def open_tunnel(
    proxy: EgressProxy,
    host: str,
    port: int,
    *,
    timeout: float | None,
    socket_options: Iterable[tuple[int, int, int]] = (),
) -> socket.socket:
    """A socket connected through the proxy to host:port (an address or a
    name), ready for TLS or plain HTTP. Raises EgressProxyError, or
    TimeoutError when the proxy does not answer within `timeout`.
    socket_options are the connection's (urllib3's TCP_NODELAY: headers and
    body are separate writes, which Nagle would hold back)."""
    try:
        sock = socket.create_connection((proxy.host, proxy.port), timeout=timeout)
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else exc.strerror
        raise EgressProxyError(f"unreachable ({reason or type(exc).__name__})")
    try:
        for option in socket_options:
            sock.setsockopt(*option)
        _connect(sock, proxy, host, port)
    except TimeoutError:
        sock.close()
        raise
    except OSError as exc:
        sock.close()
        reason = exc.strerror or type(exc).__name__
        raise EgressProxyError(f"connection lost during CONNECT ({reason})")
    except BaseException:
        sock.close()
        raise
    return sock


def _connect(sock: socket.socket, proxy: EgressProxy, host: str, port: int) -> None:
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    if proxy.authorization:
        lines.append(f"Proxy-Authorization: {proxy.authorization}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))
    status = _status(_read_head(sock))
    if status // 100 != 2:
        raise EgressProxyError(
            f"CONNECT answered {status}",
            transport_failure=status in _DESTINATION_FAILURES,
        )


def _read_head(sock: socket.socket) -> bytes:
    # A byte at a time: whatever follows the head belongs to the tunnel (the
    # destination's bytes), so nothing past it may be read here. Once per new
    # connection, a few dozen bytes.
    head = bytearray()
    while not head.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        if not byte:
            raise EgressProxyError("closed the connection before answering CONNECT")
        head += byte
        if len(head) > MAX_ANSWER_BYTES:
            raise EgressProxyError("answered CONNECT with an oversized head")
    return bytes(head)


def _status(head: bytes) -> int:
    version, _, rest = head.partition(b" ")
    code = rest[:3]
    if not version.startswith(b"HTTP/1.") or not code.isdigit():
        raise EgressProxyError("answered CONNECT with something other than HTTP")
    return int(code)
