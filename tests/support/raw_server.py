"""Raw TCP servers on 127.0.0.1 for receivers no HTTP server would be: ones
that hang, trickle, flood, reset, speak something else, or only count the
connections they get (the `start_raw_server` and `listener` fixtures), and
the handlers the sender's tests and the hostile-receiver tests share."""

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


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


Handler = Callable[[socket.socket, RawServer], None]


@contextmanager
def raw_servers() -> Iterator[Callable[..., RawServer]]:
    """start(handle=None) -> a TCP server on 127.0.0.1; all of them stopped,
    and every connection they accepted closed, on leaving.

    handle(conn, server) runs per accepted connection in its own thread;
    without one, connections are only counted (and held open).
    """
    servers: list[RawServer] = []
    held: list[socket.socket] = []

    def start(handle: Handler | None = None) -> RawServer:
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

    try:
        yield start
    finally:
        for server in servers:
            server.stop.set()
            server.sock.close()
        for conn in held:
            try:
                conn.close()
            except OSError:
                pass


def _run_handler(handle: Handler, conn: socket.socket, server: RawServer) -> None:
    try:
        handle(conn, server)
    except OSError:
        pass


def settle() -> None:
    """Give a stray connection time to be accepted before counting."""
    time.sleep(0.2)


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


def flood_of(size: int) -> Handler:
    """A handler answering 200 with a `size`-byte body, counting what it
    sent in server.bytes_sent."""

    def flood(conn: socket.socket, server: RawServer) -> None:
        read_request_head(conn)
        conn.sendall(HEAD_200 + f"Content-Length: {size}\r\n\r\n".encode())
        chunk = b"A" * 65536
        for _ in range(size // len(chunk)):
            conn.sendall(chunk)
            server.bytes_sent += len(chunk)

    return flood


def trickle_headers(conn: socket.socket, server: RawServer) -> None:
    """Answers its headers one byte every 50 ms, and never ends them."""
    read_request_head(conn)
    for byte in HEAD_200 + b"X-Slow: " + b"a" * 1000:
        if server.stop.wait(0.05):
            return
        conn.sendall(bytes([byte]))


def trickle_body(conn: socket.socket, server: RawServer) -> None:
    """Answers 200 at once, then its body one byte every 50 ms."""
    read_request_head(conn)
    conn.sendall(HEAD_200 + b"Content-Length: 100000\r\n\r\nstarted ")
    while not server.stop.wait(0.05):
        conn.sendall(b".")


def reset_connection(conn: socket.socket, server: RawServer) -> None:
    """Reads the whole request, then resets the connection instead of
    answering."""
    read_whole_request(conn)
    # SO_LINGER 0: close with a RST instead of a FIN.
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def not_tls(conn: socket.socket, server: RawServer) -> None:
    """Answers a TLS ClientHello in plain HTTP."""
    conn.settimeout(2)
    conn.recv(4096)  # the ClientHello
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    conn.close()
