"""Real local servers (HTTP, HTTPS, raw TCP), a test CA, and a fake resolver for
the outbound-security tests. Everything listens on 127.0.0.1 only."""

import datetime
import http.server
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from delivery import http as outbound
from delivery import ssrf


@pytest.fixture(autouse=True)
def _fresh_connection_pools() -> Iterator[None]:
    """Each test starts without pooled connections from an earlier one."""
    yield
    for adapter in outbound._adapters.values():
        adapter.poolmanager.clear()


# --- HTTP(S) receivers ----------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


Reply = tuple[int, dict[str, str], bytes]


@dataclass
class Receiver:
    """A threaded HTTP/1.1 (keep-alive) server; `reply(received)` decides the answer."""

    server: http.server.ThreadingHTTPServer
    scheme: str
    requests: list[Received] = field(default_factory=list)
    connections: int = 0
    sni_names: list[str | None] = field(default_factory=list)
    open_sockets: list[socket.socket] = field(default_factory=list)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        # Keep-alive connections too, or a pooled client connection could
        # outlive the server and meet a later test's server on the same port.
        for sock in self.open_sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            except OSError:
                pass

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"


def _start_receiver(
    reply: Callable[[Received], Reply], *, tls: ssl.SSLContext | None = None
) -> Receiver:
    holder: dict[str, Receiver] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def setup(self) -> None:
            super().setup()
            holder["r"].connections += 1
            holder["r"].open_sockets.append(self.connection)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            received = Received(
                self.path, dict(self.headers.items()), self.rfile.read(length)
            )
            holder["r"].requests.append(received)
            status, headers, body = reply(received)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver = Receiver(server, "https" if tls else "http")
    holder["r"] = receiver
    if tls is not None:

        def remember_sni(sock: ssl.SSLSocket, name: str | None, ctx: Any) -> None:
            receiver.sni_names.append(name)

        tls.sni_callback = remember_sni
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    return receiver


def _ok(received: Received) -> Reply:
    return 200, {"Content-Type": "text/plain"}, b"ok"


@pytest.fixture
def start_receiver() -> Iterator[Callable[..., Receiver]]:
    """start_receiver(reply=None, tls=None) -> a running Receiver (stopped after)."""
    started: list[Receiver] = []

    def start(
        reply: Callable[[Received], Reply] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> Receiver:
        receiver = _start_receiver(reply or _ok, tls=tls)
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop()


@pytest.fixture
def receiver(start_receiver) -> Receiver:
    return start_receiver()


# --- raw TCP servers (hostile receivers, connection counters) --------------------


@dataclass
class RawServer:
    sock: socket.socket
    accepted: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    bytes_sent: int = 0

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def url(self, path: str = "/hook", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"


@pytest.fixture
def start_raw_server() -> Iterator[Callable[..., RawServer]]:
    """start_raw_server(handle=None) -> a TCP server on 127.0.0.1.

    handle(conn, server) runs per accepted connection in its own thread;
    without one, connections are only counted (and held open).
    """
    servers: list[RawServer] = []
    held: list[socket.socket] = []

    def start(
        handle: Callable[[socket.socket, RawServer], None] | None = None,
    ) -> RawServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        sock.settimeout(0.05)
        server = RawServer(sock)
        servers.append(server)

        def serve() -> None:
            while not server.stop.is_set():
                try:
                    conn, _ = sock.accept()
                except (TimeoutError, OSError):
                    continue
                server.accepted += 1
                held.append(conn)
                if handle is not None:
                    threading.Thread(
                        target=_run_handler, args=(handle, conn, server), daemon=True
                    ).start()

        threading.Thread(target=serve, daemon=True).start()
        return server

    yield start
    for server in servers:
        server.stop.set()
        server.sock.close()
    for conn in held:
        try:
            conn.close()
        except OSError:
            pass


def _run_handler(
    handle: Callable[[socket.socket, RawServer], None],
    conn: socket.socket,
    server: RawServer,
) -> None:
    try:
        handle(conn, server)
    except OSError:
        pass


def read_request_head(conn: socket.socket, limit: float = 5.0) -> bytes:
    """Read until the end of the request headers (bounded)."""
    conn.settimeout(limit)
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def read_whole_request(conn: socket.socket) -> None:
    """Head and body: a reset sent before the body is in would race the
    sender's write of it (urllib3 then reads EOF, not the reset)."""
    data = read_request_head(conn)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return
        body += chunk


HEAD_200 = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"


def flood_of(size: int) -> Callable[[socket.socket, RawServer], None]:
    """A raw-server handler answering 200 with a `size`-byte body, counting
    what it sent in server.bytes_sent."""

    def flood(conn: socket.socket, server: RawServer) -> None:
        read_request_head(conn)
        conn.sendall(HEAD_200 + f"Content-Length: {size}\r\n\r\n".encode())
        chunk = b"A" * 65536
        for _ in range(size // len(chunk)):
            conn.sendall(chunk)
            server.bytes_sent += len(chunk)

    return flood


@pytest.fixture
def listener(start_raw_server) -> RawServer:
    """A TCP listener on 127.0.0.1 that only counts the connections it gets."""
    return start_raw_server()


def settle() -> None:
    """Give a stray connection time to be accepted before counting."""
    time.sleep(0.2)


# --- a test CA and certificates ---------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    ca_bundle: Path
    cert: Path
    key: Path
    self_signed_cert: Path
    self_signed_key: Path

    def server_context(self, *, self_signed: bool = False) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if self_signed:
            context.load_cert_chain(self.self_signed_cert, self.self_signed_key)
        else:
            context.load_cert_chain(self.cert, self.key)
        return context


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    *,
    issuer: x509.Name | None = None,
    issuer_key: ec.EllipticCurvePrivateKey | None = None,
    names: list[str] = (),
    ca: bool = False,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        ).add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
            critical=False,
        ).add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
            critical=False,
        )
        if issuer_key is not None:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    issuer_key.public_key()
                ),
                critical=False,
            )
    return builder.sign(issuer_key or key, hashes.SHA256())


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory) -> TlsFiles:
    """A test CA, a certificate it issued for `localhost` and `service.test`, and
    a self-signed certificate for `localhost`."""
    folder = tmp_path_factory.mktemp("tls")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _certificate("Webhooks Test CA", ca_key, ca=True)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _certificate(
        "localhost",
        leaf_key,
        issuer=ca_cert.subject,
        issuer_key=ca_key,
        names=["localhost", "service.test"],
    )
    lone_key = ec.generate_private_key(ec.SECP256R1())
    lone = _certificate("localhost", lone_key, names=["localhost"])
    pem = serialization.Encoding.PEM
    files = TlsFiles(
        ca_bundle=folder / "ca.pem",
        cert=folder / "leaf.pem",
        key=folder / "leaf.key",
        self_signed_cert=folder / "self.pem",
        self_signed_key=folder / "self.key",
    )
    files.ca_bundle.write_bytes(ca_cert.public_bytes(pem))
    files.cert.write_bytes(leaf.public_bytes(pem))
    _write_key(files.key, leaf_key)
    files.self_signed_cert.write_bytes(lone.public_bytes(pem))
    _write_key(files.self_signed_key, lone_key)
    return files


@pytest.fixture
def test_ca(settings, tls_files) -> TlsFiles:
    """Receivers' certificates are verified against the test CA."""
    settings.WEBHOOK_CA_BUNDLE = str(tls_files.ca_bundle)
    return tls_files


# --- name resolution -----------------------------------------------------------------


@dataclass
class FakeDns:
    """Answers for test names; each name maps to a list of answers, used in
    turn (the last one repeats), so a second lookup can differ (rebinding)."""

    answers: dict[str, list[list[str]]] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)

    def add(self, name: str, *answers: list[str]) -> None:
        self.answers[name] = list(answers)


@pytest.fixture
def fake_dns(monkeypatch) -> FakeDns:
    """socket.getaddrinfo answers for the names added; other names (numeric
    forms, `localhost`) go to the real resolver, names in `.test` that were
    not added do not resolve. Nothing ever leaves the machine."""
    dns = FakeDns()
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name in dns.answers:
            dns.lookups.append(name)
            turns = dns.answers[name]
            answer = turns.pop(0) if len(turns) > 1 else turns[0]
            results = []
            for address in answer:
                if ipaddress.ip_address(address).version == 6:
                    results.append(
                        (
                            socket.AF_INET6,
                            socket.SOCK_STREAM,
                            6,
                            "",
                            (address, port, 0, 0),
                        )
                    )
                else:
                    results.append(
                        (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))
                    )
            return results
        if name.endswith(".test") or name.endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return dns


@pytest.fixture
def exempt_loopback(monkeypatch) -> None:
    """With the guard on, let exactly 127.0.0.1 through (so a real local
    receiver can stand in for a public one); every other address, including
    the rest of 127.0.0.0/8, stays blocked."""
    real = ssrf.blocked_reason

    def blocked_reason(ip: Any) -> str | None:
        return None if str(ip) == "127.0.0.1" else real(ip)

    monkeypatch.setattr(ssrf, "blocked_reason", blocked_reason)


def json_reply(payload: dict, status: int = 200) -> Reply:
    return status, {"Content-Type": "application/json"}, json.dumps(payload).encode()
