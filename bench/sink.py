"""The receiving end of the benchmark: a small HTTP/1.1 keep-alive server.

It has to be far faster than the service it measures (>= 10,000 req/s on a
2-core machine), so it is a raw asyncio Protocol with the least parsing that
works: the request line, Content-Length (or chunked) and the `webhook-id`
header. Every receipt is recorded as (path, webhook-id, received, answered)
so the harness can compute publish->receipt latency and find duplicates.

The first path segment picks the behaviour:
    /fast/...   200 at once
    /slow/...   200 after SLOW_SECONDS
    /hang/...   never answers; the client has to give up
    /__stats    counts (GET), /__receipts?since=N (GET), /__reset (POST)

It listens on two ports, `main` and `aux`, with the same behaviour: the
service's circuit breaker keys on scheme://host:port, so endpoints that should
look like a different (dead) host live on `aux`.

Run: python -m bench.sink [--slow-seconds 1]; it prints
`READY main=<port> aux=<port>` once listening and serves until killed.
"""

import argparse
import asyncio
import json
import socket
import sys
import time
from collections import Counter, deque
from urllib.parse import parse_qs, urlsplit

SLOW_SECONDS = 1.0
_OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
_MAX_HEAD = 64 * 1024


class Receipts:
    """Every request seen, in arrival order, plus counts per behaviour."""

    def __init__(self) -> None:
        self.rows: list[list] = []
        self.counts: Counter[str] = Counter()
        self.answered: Counter[str] = Counter()
        # Receipts of a (path, webhook-id) not seen before: duplicates (which
        # at-least-once allows) must not make a wait end early.
        self.distinct: Counter[str] = Counter()
        self._seen: set[tuple[str, str]] = set()

    def add(self, mode: str, path: str, webhook_id: str, received: float) -> list:
        row = [path, webhook_id, received, None]
        self.rows.append(row)
        self.counts[mode] += 1
        if (path, webhook_id) not in self._seen:
            self._seen.add((path, webhook_id))
            self.distinct[mode] += 1
        return row

    def answer(self, mode: str, row: list) -> None:
        row[3] = time.time()
        self.answered[mode] += 1

    def reset(self) -> None:
        self.rows = []
        self.counts = Counter()
        self.answered = Counter()
        self.distinct = Counter()
        self._seen = set()


class SinkProtocol(asyncio.Protocol):
    def __init__(self, receipts: Receipts, slow_seconds: float) -> None:
        self.receipts = receipts
        self.slow_seconds = slow_seconds
        self.buffer = b""
        # Answers leave in request order even when a slow one is still waiting.
        self.pending: deque[list] = deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pending.clear()

    def data_received(self, data: bytes) -> None:
        self.buffer = self.buffer + data if self.buffer else data
        while self.buffer and not self.closed:
            request = self._next_request()
            if request is None:
                return
            self._handle(*request)

    def _next_request(self) -> tuple[bytes, bytes, bytes] | None:
        """(request line, lowercased head, body) or None until it is complete."""
        buffer = self.buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > _MAX_HEAD:
                self.transport.close()
                self.closed = True
            return None
        line_end = buffer.find(b"\r\n")
        head = buffer[line_end : end + 2].lower()
        start = end + 4
        if _header(head, b"transfer-encoding") == b"chunked":
            decoded = _dechunk(buffer, start)
            if decoded is None:
                return None
            body, consumed = decoded
        else:
            length = _header(head, b"content-length")
            size = int(length) if length else 0
            if len(buffer) < start + size:
                return None
            body, consumed = buffer[start : start + size], start + size
        self.buffer = buffer[consumed:]
        return buffer[:line_end], head, body

    def _handle(self, line: bytes, head: bytes, body: bytes) -> None:
        received = time.time()
        parts = line.split(b" ")
        target = parts[1].decode("latin-1") if len(parts) > 1 else "/"
        path = target.split("?", 1)[0]
        mode = path[1:].split("/", 1)[0]
        if mode.startswith("__"):
            self._control(mode, target, parts[0])
            return
        webhook_id = _header(head, b"webhook-id")
        if webhook_id is None:
            webhook_id = _body_id(body)
        row = self.receipts.add(mode, path, webhook_id.decode("latin-1"), received)
        slot = [None, row, mode]
        self.pending.append(slot)
        if mode == "hang":
            return
        if mode == "slow":
            asyncio.get_running_loop().call_later(
                self.slow_seconds, self._ready, slot, _OK
            )
        else:
            self._ready(slot, _OK)

    def _ready(self, slot: list, response: bytes) -> None:
        slot[0] = response
        while self.pending and self.pending[0][0] is not None and not self.closed:
            response, row, mode = self.pending.popleft()
            self.transport.write(response)
            if row is not None:
                self.receipts.answer(mode, row)

    def _control(self, name: str, target: str, method: bytes) -> None:
        receipts = self.receipts
        status = 200
        if name == "__stats":
            payload = {
                "total": len(receipts.rows),
                "counts": dict(receipts.counts),
                "answered": dict(receipts.answered),
                "distinct": dict(receipts.distinct),
            }
        elif name == "__receipts":
            query = parse_qs(urlsplit(target).query)
            since = int(query.get("since", ["0"])[0])
            payload = {"rows": receipts.rows[since:]}
        elif name == "__reset" and method == b"POST":
            receipts.reset()
            payload = {"reset": True}
        else:
            payload, status = {"error": f"no such control path {name}"}, 404
        slot = [None, None, name]
        self.pending.append(slot)
        self._ready(slot, _json_response(payload, status))


def _header(head: bytes, name: bytes) -> bytes | None:
    """The value of a header in a lowercased head block starting with CRLF."""
    at = head.find(b"\r\n" + name + b":")
    if at < 0:
        return None
    start = at + len(name) + 3
    end = head.find(b"\r\n", start)
    return head[start:end].strip()


def _body_id(body: bytes) -> bytes:
    """Fallback when a request carries no webhook-id: the envelope's `id`."""
    try:
        return str(json.loads(body).get("id", "")).encode()
    except (ValueError, AttributeError):
        return b""


def _dechunk(buffer: bytes, start: int) -> tuple[bytes, int] | None:
    body = b""
    at = start
    while True:
        line_end = buffer.find(b"\r\n", at)
        if line_end < 0:
            return None
        size = int(buffer[at:line_end].split(b";")[0], 16)
        chunk_start = line_end + 2
        if len(buffer) < chunk_start + size + 2:
            return None
        if size == 0:
            trailer_end = buffer.find(b"\r\n\r\n", line_end)
            if trailer_end < 0:
                return None
            return body, trailer_end + 4
        body += buffer[chunk_start : chunk_start + size]
        at = chunk_start + size + 2


def _json_response(payload: dict, status: int) -> bytes:
    body = json.dumps(payload, separators=(",", ":")).encode()
    reason = b"OK" if status == 200 else b"Not Found"
    return (
        b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d"
        b"\r\n\r\n" % (status, reason, len(body))
    ) + body


async def serve(host: str, slow_seconds: float) -> None:
    loop = asyncio.get_running_loop()
    receipts = Receipts()

    def factory() -> SinkProtocol:
        return SinkProtocol(receipts, slow_seconds)

    main = await loop.create_server(factory, host, 0, backlog=4096)
    aux = await loop.create_server(factory, host, 0, backlog=4096)
    ports = [server.sockets[0].getsockname()[1] for server in (main, aux)]
    print(f"READY main={ports[0]} aux={ports[1]}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--slow-seconds", type=float, default=SLOW_SECONDS)
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.host, args.slow_seconds))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
