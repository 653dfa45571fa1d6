"""A receiver that keeps a ledger: how many times each event id arrived.

A real local HTTP server (stdlib, threaded, Nagle off) that answers 200 after
an optional delay, so a scenario can kill a worker while requests are in
flight. Event ids come from the Standard Webhooks `webhook-id` header.
"""

import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # A worker opens dozens of connections at once; the default backlog of 5
    # would refuse some, and those failed attempts are the receiver's doing.
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a killed sender resets its connection: expected here


class LedgerReceiver:
    def __init__(self, *, delay: float = 0.0) -> None:
        self.delay = delay
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str = "/ledger") -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def counts(self) -> Counter[str]:
        with self._lock:
            return Counter(self._seen)

    def missing(self, ids: list[str]) -> list[str]:
        counts = self.counts()
        return [event_id for event_id in ids if event_id not in counts]

    def duplicates(self) -> int:
        """Requests beyond the first for each event id."""
        return sum(count - 1 for count in self.counts().values())

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        ledger = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                # Counted once read: the receiver has the event even if its
                # sender is killed before the answer (that resend is a duplicate).
                with ledger._lock:
                    ledger._seen[self.headers.get("webhook-id", "")] += 1
                if ledger.delay:
                    threading.Event().wait(ledger.delay)
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the sender is gone (killed mid-request)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
