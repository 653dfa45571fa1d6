"""The tests' one local HTTP receiver: a threaded stdlib server on 127.0.0.1
(HTTP/1.1 keep-alive, Nagle off, HTTPS with a test certificate on request)
that records every request it gets and answers as the test says:

    with Receiver() as receiver:
        receiver.script("/hooks", Reply(503), Reply(200))  # then 200 for ever
        ...
        requests = receiver.wait_for(2, path="/hooks")

or with a function of the request (the `start_receiver` fixture):

    receiver = start_receiver(lambda received: (401, {}, b"denied"))

Every suite uses it: the sender's unit tests, the engine in-process, the
real worker end to end, and the fault tests' ledger (how many times each
webhook-id arrived).
"""

import json
import socket
import ssl
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.waiting import wait_until


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    # Seconds to wait before answering (a slow or hanging receiver).
    delay: float = 0.0


class Headers(dict):
    """A request's headers: names lower-cased, looked up in any case."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__((name.lower(), value) for name, value in items)

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


@dataclass(frozen=True)
class Received:
    # The path without the query string (what scripts and filters match).
    path: str
    headers: Headers
    body: bytes
    # time.time() when the request had been read.
    at: float = 0.0
    # The request target as sent: path and query string.
    target: str = ""
    # The sender's address (which host sent it, in the multi-host tests).
    client: str = ""


# What a `respond` function returns: a Reply, or (status, headers, body).
Answer = Reply | tuple[int, dict[str, str], bytes]


def json_reply(payload: dict, status: int = 200) -> Answer:
    return status, {"Content-Type": "application/json"}, json.dumps(payload).encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # A worker opens dozens of connections at once; the default backlog of 5
    # would refuse some, and those failed attempts are the receiver's doing.
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A sender that gave up (timeout) or was killed resets its connection:
        # expected here. Anything else is the test's to see.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class Receiver:
    """Each path answers its script in order, the last reply repeating; a
    path without a script answers `default`, unless `respond` decides every
    answer. Stopped by close() (or the `with` block): its listening socket
    and every kept-alive connection are closed."""

    def __init__(
        self,
        default: Reply | None = None,
        *,
        respond: Callable[[Received], Answer] | None = None,
        tls: ssl.SSLContext | None = None,
        bind: str = "127.0.0.1",
    ) -> None:
        self.default = default or Reply()
        self.scheme = "https" if tls is not None else "http"
        # Connections accepted, and the SNI name each TLS handshake asked for.
        self.connections = 0
        self.sni_names: list[str | None] = []
        self._respond = respond
        self._scripts: dict[str, list[Reply]] = {}
        self._received: list[Received] = []
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._server = _Server((bind, 0), self._handler())
        if tls is not None:
            tls.sni_callback = self._remember_sni
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
        )
        self._thread.start()

    def __enter__(self) -> "Receiver":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, path: str = "/hooks", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def script(self, path: str, *replies: Reply) -> None:
        with self._lock:
            self._scripts[path] = list(replies)

    def requests(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self._received if path is None or r.path == path]

    def wait_for(
        self, count: int, *, path: str | None = None, timeout: float = 15.0
    ) -> list[Received]:
        """Block until at least `count` requests (to `path`) arrived."""
        return wait_until(
            lambda: (lambda got: got if len(got) >= count else None)(
                self.requests(path)
            ),
            timeout=timeout,
            message=f"{count} requests to {path or 'any path'}",
        )

    def counts(self) -> Counter[str]:
        """How many requests each webhook-id arrived in."""
        return Counter(r.headers.get("webhook-id", "") for r in self.requests())

    def missing(self, ids: list[str]) -> list[str]:
        """The webhook-ids of `ids` that never arrived."""
        counts = self.counts()
        return [event_id for event_id in ids if event_id not in counts]

    def duplicates(self) -> int:
        """Requests beyond the first for each webhook-id."""
        return sum(count - 1 for count in self.counts().values())

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        # Keep-alive connections too, or a pooled client connection could
        # outlive the server and meet a later test's server on the same port.
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            except OSError:
                pass

    def _remember_sni(self, sock: ssl.SSLSocket, name: str | None, ctx: Any) -> None:
        with self._lock:
            self.sni_names.append(name)

    def _answer(self, received: Received) -> Reply:
        if self._respond is not None:
            answer = self._respond(received)
            if isinstance(answer, Reply):
                return answer
            status, headers, body = answer
            return Reply(status=status, body=body, headers=headers)
        with self._lock:
            script = self._scripts.get(received.path)
            if not script:
                return self.default
            return script.pop(0) if len(script) > 1 else script[0]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            # Without this every answer waits ~40 ms for a delayed ACK.
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with receiver._lock:
                    receiver.connections += 1
                    receiver._sockets.append(self.connection)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                # Recorded once read: the receiver has the request even if its
                # sender is killed before the answer.
                received = Received(
                    path=self.path.split("?", 1)[0],
                    headers=Headers(self.headers.items()),
                    body=body,
                    at=time.time(),
                    target=self.path,
                    client=self.client_address[0],
                )
                with receiver._lock:
                    receiver._received.append(received)
                reply = receiver._answer(received)
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:
                    pass  # the client gave up (timeout): nothing to answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
