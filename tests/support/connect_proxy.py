"""A small HTTP CONNECT proxy on 127.0.0.1 for the egress proxy tests: it
records every request it gets (the CONNECT target and headers) and relays
the tunnel's bytes both ways; or answers every CONNECT with `refuse` (e.g.
407, 502). Anything other than CONNECT (an absolute-form request) is
recorded and answered 405, so a test sees it was never used.

    with ConnectProxy() as proxy:
        ... WEBHOOK_EGRESS_PROXY=proxy.url ...
        assert proxy.targets() == ["127.0.0.1:8443"]
"""

import socket
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class ProxyRequest:
    method: str
    target: str
    headers: dict[str, str]


class ConnectProxy:
    def __init__(self, *, refuse: int | None = None) -> None:
        self.refuse = refuse
        self.requests: list[ProxyRequest] = []
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._closed = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def port(self) -> int:
        return self._listener.getsockname()[1]

    def url(self, credentials: str = "") -> str:
        user = f"{credentials}@" if credentials else ""
        return f"http://{user}127.0.0.1:{self.port}"

    def targets(self) -> list[str]:
        """The CONNECT targets, in order (host:port as asked for)."""
        with self._lock:
            return [r.target for r in self.requests if r.method == "CONNECT"]

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                _close(sock)

    def __enter__(self) -> "ConnectProxy":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _keep(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            self._keep(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        client.settimeout(10)
        head = b""
        try:
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
        except OSError:
            return
        request_line, *header_lines = head.split(b"\r\n\r\n")[0].decode().split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        with self._lock:
            self.requests.append(ProxyRequest(method, target, headers))
        if method != "CONNECT":
            client.sendall(
                b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n"
            )
            return _close(client)
        if self.refuse is not None:
            client.sendall(f"HTTP/1.1 {self.refuse} Refused\r\n\r\n".encode())
            return _close(client)
        host, _, port = target.rpartition(":")
        try:
            upstream = socket.create_connection(
                (host.strip("[]"), int(port)), timeout=5
            )
        except OSError:
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
            return _close(client)
        self._keep(upstream)
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        client.settimeout(None)
        upstream.settimeout(None)
        threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()
        _pump(client, upstream)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        _close(source)
        _close(sink)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
