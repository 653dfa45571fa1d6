"""A real local HTTP receiver for tests: a threaded stdlib server on
127.0.0.1, scriptable per path (status, headers, body, delay), recording every
request it gets. Reusable by any test suite:

    with Receiver() as receiver:
        receiver.script("/hooks", Reply(503), Reply(200))  # then 200 for ever
        ...
        requests = receiver.wait_for(2, path="/hooks")
"""

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.integration.waiting import wait_until


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    # Seconds to wait before answering (a slow or hanging receiver).
    delay: float = 0.0


@dataclass(frozen=True)
class Received:
    path: str
    # Header names lower-cased.
    headers: dict[str, str]
    body: bytes
    # time.time() when the request had been read.
    at: float


class Receiver:
    """Each path answers its script in order; the last reply repeats."""

    def __init__(self, default: Reply | None = None) -> None:
        self._default = default or Reply()
        self._scripts: dict[str, list[Reply]] = {}
        self._received: list[Received] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def __enter__(self) -> "Receiver":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, path: str = "/hooks") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

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

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_reply(self, path: str) -> Reply:
        with self._lock:
            script = self._scripts.get(path)
            if not script:
                return self._default
            return script.pop(0) if len(script) > 1 else script[0]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            # Without this every answer waits ~40 ms for a delayed ACK.
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                path = self.path.split("?", 1)[0]
                with receiver._lock:
                    receiver._received.append(
                        Received(
                            path=path,
                            headers={k.lower(): v for k, v in self.headers.items()},
                            body=body,
                            at=time.time(),
                        )
                    )
                reply = receiver._next_reply(path)
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
