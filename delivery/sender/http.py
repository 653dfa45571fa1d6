"""The one module that makes outbound HTTP requests.

`send()` never raises: every outcome, including timeouts, refused connections,
TLS failures, blocked destinations and OAuth2 token failures, comes back as a
SendResult for the retry policy to classify, with a short error that never
contains a secret or the URL.

What it guarantees, and where:
- SSRF guard (`delivery.ssrf`): the host is resolved once and every answer
  vetted before anything is sent; the connection is then opened to the vetted
  addresses themselves (`_GuardedConnectionMixin._new_conn`), never to the name
  again, so DNS rebinding cannot move it. TLS is still verified against the
  host name (SNI and certificate), because only the socket is pinned.
- Redirects are never followed (a 3xx is returned as it is).
- One deadline, WEBHOOK_TIMEOUT, bounds the whole send() including an OAuth2
  token fetch, a retry after a 401, and a response trickled a byte at a time:
  every socket read and write is given only the time left (`_DeadlineSocket`).
- The response body is read only up to WEBHOOK_RESPONSE_EXCERPT_BYTES.
- Connections are pooled per host (keep-alive) and shared by all threads; no
  requests.Session is used on the hot path, so there is no cookie jar to leak
  between tenants and nothing from the environment (proxies, netrc).
- With WEBHOOK_EGRESS_PROXY, a connection is a CONNECT tunnel through it to
  the vetted address (`delivery.sender.proxy`), opened in the same place as
  a direct one, so deliveries and token requests alike take it.
"""

import codecs
import errno
import http.client
import io
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import certifi
import requests
from django.conf import settings
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    LocationParseError,
    NameResolutionError,
    NewConnectionError,
)
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.response import BaseHTTPResponse
from urllib3.util import Timeout, parse_url

from delivery.sender import oauth2, proxy, ssrf
from delivery.sender.proxy import EgressProxyError
from delivery.sender.ssrf import BlockedDestination, UnresolvableDestination
from delivery.sender.types import OAuth2Config, OutboundRequest, SendResult
from webhooks_project.conf import EgressProxy

__all__ = ["send"]


# --- per-request state the connections read --------------------------------

# send() runs on one thread from start to end, and a pooled connection is
# used by one thread at a time, so the current deadline and the vetted
# addresses travel to the socket layer in a thread-local.
_context = threading.local()


@dataclass(frozen=True)
class _Pin:
    host: str
    port: int
    addresses: tuple[tuple[int, tuple], ...]


def _remaining(default: float | None) -> float | None:
    """default, shortened to the time left before the current deadline."""
    deadline: float | None = getattr(_context, "deadline", None)
    if deadline is None:
        return default
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline reached")
    return left if default is None or left < default else default


class _DeadlineSocket:
    """A socket (plain or TLS) whose reads and writes never outlast the
    current deadline: each one is given only the time left, so a receiver
    trickling its answer cannot stretch a request past WEBHOOK_TIMEOUT.

    Everything else is the wrapped socket's. http.client reads through
    makefile("rb"), which is rebuilt here on top of this object.
    """

    __slots__ = ("_sock", "_timeout")

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._timeout = sock.gettimeout()

    def settimeout(self, timeout: float | None) -> None:
        self._timeout = timeout

    def gettimeout(self) -> float | None:
        return self._timeout

    def _arm(self) -> None:
        self._sock.settimeout(_remaining(self._timeout))

    def recv_into(self, *args: Any) -> int:
        self._arm()
        return self._sock.recv_into(*args)

    def recv(self, *args: Any) -> bytes:
        self._arm()
        return self._sock.recv(*args)

    def send(self, *args: Any) -> int:
        self._arm()
        return self._sock.send(*args)

    def sendall(self, data: Any, flags: int = 0) -> None:
        # ssl's sendall gives each chunk the full timeout: loop here instead.
        with memoryview(data) as view, view.cast("B") as remaining:
            while remaining:
                self._arm()
                if flags:
                    sent = self._sock.send(remaining, flags)
                else:
                    sent = self._sock.send(remaining)
                remaining = remaining[sent:]

    def makefile(self, mode: str = "r", buffering: int | None = None, **kw: Any) -> Any:
        if mode != "rb":
            return self._sock.makefile(mode, buffering, **kw)
        # Mirrors socket.makefile: the reference count keeps the file
        # descriptor open while http.client still reads a response.
        self._sock._io_refs += 1  # type: ignore[attr-defined]
        raw = socket.SocketIO(self, "rb")  # type: ignore[arg-type]
        size = buffering if buffering and buffering > 0 else io.DEFAULT_BUFFER_SIZE
        return io.BufferedReader(raw, size)

    def _decref_socketios(self) -> None:
        self._sock._decref_socketios()  # type: ignore[attr-defined]

    def fileno(self) -> int:
        return self._sock.fileno()

    def close(self) -> None:
        self._sock.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def _open_socket(
    addresses: tuple[tuple[int, tuple], ...],
    *,
    timeout: float | None,
    socket_options: Any,
    source_address: tuple[str, int] | None,
) -> socket.socket:
    """Connect to the first vetted address that answers (like
    socket.create_connection, but with no name resolution)."""
    last_error: OSError | None = None
    for family, sockaddr in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            for option in socket_options or ():
                sock.setsockopt(*option)
            sock.settimeout(_remaining(timeout))
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            last_error = exc
    raise last_error or OSError("no address to connect to")


class _GuardedConnectionMixin:
    """Opens the socket to the addresses send() vetted (or, for a connection
    it did not foresee, vets the host itself), directly or through the egress
    proxy; wraps it in _DeadlineSocket."""

    guarded: bool = True
    # (Not `proxy`: urllib3's connections have one, for its own proxying.)
    egress: EgressProxy | None = None
    # Provided by urllib3's HTTPConnection.
    _dns_host: str
    port: int
    timeout: float | None
    socket_options: Any
    source_address: tuple[str, int] | None
    sock: Any

    def _new_conn(self) -> socket.socket:
        host = self._dns_host.rstrip(".").lower()
        pin: _Pin | None = getattr(_context, "pin", None)
        if pin is not None and pin.host == host and pin.port == self.port:
            addresses = pin.addresses
        elif self.guarded:
            addresses = ssrf.vet_host(host, self.port).addresses
        else:
            addresses = ()
        if self.egress is not None:
            return self._tunnel(self.egress, host, addresses)
        if not addresses:
            # Guard lifted: let urllib3 resolve and connect as usual.
            return super()._new_conn()  # type: ignore[misc]
        try:
            sock = _open_socket(
                addresses,
                timeout=self.timeout,
                socket_options=self.socket_options,
                source_address=self.source_address,
            )
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, f"connect timeout={self.timeout}") from exc
        except OSError as exc:
            raise NewConnectionError(self, f"connection failed: {exc}") from exc
        sys.audit("http.client.connect", self, host, self.port)
        return sock

    def _tunnel(
        self,
        egress: EgressProxy,
        host: str,
        addresses: tuple[tuple[int, tuple], ...],
    ) -> socket.socket:
        """A CONNECT tunnel to the first vetted address the proxy reaches (to
        the name when the guard is lifted)."""
        last_error: EgressProxyError | None = None
        for target in [sockaddr[0] for _, sockaddr in addresses] or [host]:
            try:
                sock = proxy.open_tunnel(
                    egress,
                    target,
                    self.port,
                    timeout=_remaining(self.timeout),
                    socket_options=self.socket_options or (),
                )
            except TimeoutError as exc:
                raise ConnectTimeoutError(
                    self, f"connect timeout={self.timeout}"
                ) from exc
            except EgressProxyError as exc:
                if not exc.transport_failure:
                    raise
                last_error = exc  # that address is down: try the next one
                continue
            sys.audit("http.client.connect", self, host, self.port)
            return sock
        assert last_error is not None
        raise last_error

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self.sock = _DeadlineSocket(self.sock)


def _pool_classes(
    guarded: bool, egress: EgressProxy | None
) -> dict[str, type[HTTPConnectionPool]]:
    http_conn = type(
        "GuardedHTTPConnection",
        (_GuardedConnectionMixin, HTTPConnection),
        {"guarded": guarded, "egress": egress},
    )
    https_conn = type(
        "GuardedHTTPSConnection",
        (_GuardedConnectionMixin, HTTPSConnection),
        {"guarded": guarded, "egress": egress},
    )
    return {
        "http": type(
            "GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}
        ),
        "https": type(
            "GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}
        ),
    }


class _Adapter(requests.adapters.HTTPAdapter):
    """requests' adapter over pools of guarded, deadline-bound connections."""

    def __init__(
        self, *, guarded: bool, egress: EgressProxy | None, **kwargs: Any
    ) -> None:
        self._pool_classes = _pool_classes(guarded, egress)
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pool_classes


_adapters: dict[tuple[bool, EgressProxy | None], _Adapter] = {}
_adapters_lock = threading.Lock()


def _adapter(guarded: bool, host: str) -> _Adapter:
    # One adapter (so one set of pools) per guard mode and route: a connection
    # opened while the guard was lifted is never reused once it is on, nor
    # one opened directly once the host must go through the proxy.
    key = (guarded, proxy.proxy_for(host))
    adapter = _adapters.get(key)
    if adapter is None:
        with _adapters_lock:
            adapter = _adapters.get(key)
            if adapter is None:
                adapter = _Adapter(
                    guarded=guarded,
                    egress=key[1],
                    pool_connections=256,
                    pool_maxsize=settings.WEBHOOK_HTTP_CONCURRENCY,
                    max_retries=0,
                )
                _adapters[key] = adapter
    return adapter


# --- sending -----------------------------------------------------------------


def send(request: OutboundRequest) -> SendResult:
    """POST request.body to request.url. Never raises.

    With request.oauth2, a bearer token is added (cached, shared by workers);
    if the receiver answers 401 the token is fetched again and the request
    retried once. The whole call is bounded by WEBHOOK_TIMEOUT.
    """
    started = time.monotonic()
    total = settings.WEBHOOK_TIMEOUT.total_seconds()
    _context.deadline = started + total
    try:
        result = _send(request)
    except Exception as exc:  # never raise to the delivery pipeline
        result = _failure(exc)
    finally:
        _context.deadline = None
        _context.pin = None
    return replace(result, duration_ms=int((time.monotonic() - started) * 1000))


def _send(request: OutboundRequest) -> SendResult:
    guarded = not settings.WEBHOOK_ALLOW_PRIVATE_DESTINATIONS
    headers = dict(request.headers)
    token: str | None = None
    if request.oauth2 is not None:
        token_or_error = _token(request.oauth2, guarded=guarded)
        if isinstance(token_or_error, SendResult):
            return token_or_error
        token = token_or_error
        headers["Authorization"] = f"Bearer {token}"
    result = _post(request.url, request.body, headers, guarded=guarded)
    if request.oauth2 is not None and result.status_code == 401:
        token_or_error = _token(request.oauth2, guarded=guarded, rejected=token)
        if isinstance(token_or_error, SendResult):
            return token_or_error
        headers["Authorization"] = f"Bearer {token_or_error}"
        result = _post(request.url, request.body, headers, guarded=guarded)
    return result


def _token(
    config: OAuth2Config, *, guarded: bool, rejected: str | None = None
) -> str | SendResult:
    try:
        if guarded:
            _pin(config.token_url)
        return oauth2.access_token(
            config,
            adapter=_adapter(guarded, parse_url(config.token_url).host or ""),
            timeout=_timeouts(),
            verify=_verify(),
            rejected=rejected,
        )
    except oauth2.TokenError as exc:
        return SendResult(None, 0, error=f"oauth2 token: {exc}")
    except Exception as exc:
        return SendResult(None, 0, error=f"oauth2 token: {_describe(exc)}")


def _pin(url: str) -> None:
    """Vet url's destination; the connection layer will use these addresses."""
    vetted = ssrf.vet_destination(url)
    try:
        # The connection sees the name as requests sends it (IDNA-encoded).
        host = vetted.host.encode("idna").decode("ascii")
    except UnicodeError:
        host = vetted.host
    _context.pin = _Pin(host, vetted.port, vetted.addresses)


def _timeouts() -> tuple[float, float]:
    connect = settings.WEBHOOK_CONNECT_TIMEOUT.total_seconds()
    total = settings.WEBHOOK_TIMEOUT.total_seconds()
    return min(connect, total), total


def _verify() -> bool | str:
    # A private CA bundle (WEBHOOK_CA_BUNDLE) replaces the system's, e.g. for
    # receivers on an internal PKI; verification itself is never turned off.
    return getattr(settings, "WEBHOOK_CA_BUNDLE", "") or True


def _post(
    url: str, body: bytes, headers: dict[str, str], *, guarded: bool
) -> SendResult:
    # urllib3 directly, through the adapter's pools: requests' PreparedRequest
    # and Response cost more CPU than the rest of a delivery's send, and add
    # nothing here (no cookies, no redirects, no content decoding).
    try:
        if guarded:
            _pin(url)
        else:
            ssrf.parse_destination(url)
        target = parse_url(url)
        pool = _adapter(guarded, target.host or "").poolmanager.connection_from_host(
            target.host,
            port=target.port,
            scheme=target.scheme,
            pool_kwargs=_tls_kwargs(target.scheme),
        )
        connect, total = _timeouts()
        response = pool.urlopen(
            "POST",
            target.request_uri,
            body=body,
            headers=headers,
            retries=False,
            redirect=False,
            assert_same_host=False,
            preload_content=False,
            decode_content=False,
            timeout=Timeout(connect=connect, read=total),
        )
    except Exception as exc:
        return _failure(exc)
    try:
        return SendResult(
            response.status,
            0,
            response_excerpt=_read_excerpt(response),
            retry_after=response.headers.get("Retry-After"),
        )
    finally:
        # A body read to its end has already given the connection back to the
        # pool; otherwise close drops it, unread, and release_conn hands the
        # closed connection back so the pool reopens it (as requests does).
        response.close()
        response.release_conn()


def _tls_kwargs(scheme: str) -> dict[str, str]:
    # requests' defaults for verify=True: certificates checked against
    # certifi's bundle, or WEBHOOK_CA_BUNDLE.
    if scheme != "https":
        return {}
    bundle = _verify()
    return {
        "cert_reqs": "CERT_REQUIRED",
        "ca_certs": bundle if isinstance(bundle, str) else certifi.where(),
    }


def _read_excerpt(response: BaseHTTPResponse) -> str:
    """At most WEBHOOK_RESPONSE_EXCERPT_BYTES of the body, as text.

    Never reads past the cap (a 50 MB answer costs 4 KiB), and stops at the
    deadline with what arrived. A body read to its end lets the connection
    go back to the pool; a longer one is closed unread.
    """
    cap = settings.WEBHOOK_RESPONSE_EXCERPT_BYTES
    chunks: list[bytes] = []
    size = 0
    try:
        while size < cap:
            chunk = response.read1(cap - size, decode_content=False)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except (HTTPError, OSError, http.client.HTTPException):
        pass  # the status arrived; an interrupted body keeps what was read
    data = b"".join(chunks)
    # A cut multi-byte character is dropped, invalid bytes become U+FFFD,
    # and NUL (which PostgreSQL text cannot hold) too.
    text = codecs.getincrementaldecoder("utf-8")("replace").decode(
        data, final=size < cap
    )
    return text.replace("\x00", "\ufffd")


# --- errors --------------------------------------------------------------------


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """exc and everything it wraps (requests and urllib3 nest errors deeply)."""
    seen: set[int] = set()
    stack = [exc]
    while stack and len(seen) < 32:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        nested = [getattr(current, "reason", None), current.__cause__]
        nested += [current.__context__, *getattr(current, "args", ())]
        stack.extend(e for e in nested if isinstance(e, BaseException))


def _failure(exc: BaseException) -> SendResult:
    error, transport = _diagnose(exc)
    return SendResult(None, 0, error=error, transport_failure=transport)


def _describe(exc: BaseException) -> str:
    """A short, secret-free description: never the URL or a response body."""
    return _diagnose(exc)[0]


def _diagnose(exc: BaseException) -> tuple[str, bool]:
    """_describe's text, and whether the destination (or the network to it)
    failed rather than we did (SendResult.transport_failure)."""
    causes = list(_causes(exc))

    def first(*types: type[BaseException]) -> BaseException | None:
        return next((e for e in causes if isinstance(e, types)), None)

    if found := first(UnresolvableDestination):
        return f"dns: {found}", False
    if found := first(BlockedDestination):
        return f"blocked destination: {found}", False
    if found := first(EgressProxyError):
        return f"egress proxy: {found}", found.transport_failure
    if found := first(ssl.SSLCertVerificationError):
        detail = getattr(found, "verify_message", "") or ""
        text = "tls: certificate verify failed" + (
            f": {detail}"[:120] if detail else ""
        )
        return text, True
    if found := first(ssl.SSLError):
        reason = getattr(found, "reason", None)
        text = "tls: handshake failed" + (
            f" ({str(reason).lower().replace('_', ' ')})" if reason else ""
        )
        return text, True
    if first(requests.exceptions.SSLError):
        return "tls: handshake failed", True
    # Before anything was sent: e.g. a content type or header value that is
    # not latin-1 (http.client refuses it), or a host name IDNA rejects.
    if found := first(UnicodeError):
        return f"invalid request: cannot encode ({type(found).__name__})", False
    if first(ConnectionRefusedError):
        return "connection refused", True
    # (RemoteDisconnected is a ConnectionResetError: ask for it first.)
    if first(http.client.RemoteDisconnected):
        return "connection closed without a response", True
    if first(ConnectionResetError):
        return "connection reset", True
    if first(BrokenPipeError, ConnectionAbortedError):
        return "connection closed while sending", True
    if first(NameResolutionError, socket.gaierror):
        return "dns: the host does not resolve", False
    connect_timeout = next(
        (
            e
            for e in causes
            if isinstance(e, ConnectTimeoutError | requests.exceptions.ConnectTimeout)
            and not isinstance(e, NewConnectionError)
        ),
        None,
    )
    connect, total = _timeouts()
    if connect_timeout is not None:
        return f"timeout: no connection in {connect:.1f} s", True
    if first(TimeoutError, Urllib3Timeout, requests.exceptions.Timeout):
        return f"timeout: no response in {total:.1f} s", True
    if any(
        getattr(e, "errno", None) in (errno.EHOSTUNREACH, errno.ENETUNREACH)
        for e in causes
    ):
        return "host unreachable", True
    if first(http.client.HTTPException):
        return "invalid HTTP response", True
    if first(
        requests.exceptions.InvalidURL,
        requests.exceptions.MissingSchema,
        LocationParseError,
    ):
        return "invalid URL", False
    if first(requests.exceptions.InvalidSchema):
        return "invalid URL scheme", False
    # Unknown: more likely a bug of ours than the destination's doing.
    return f"connection error ({type(exc).__name__})", False
