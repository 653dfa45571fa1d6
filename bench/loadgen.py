"""An in-house load generator for the sink's own ceiling when `wrk` is missing.

asyncio, raw sockets, HTTP/1.1 keep-alive, N connections each sending the next
request as soon as the previous answer arrived. Being Python it saturates
before a fast server does, so its figure is a lower bound of the sink's
ceiling. Prints one JSON line: {"requests": n, "seconds": s, "rate": n/s}.
"""

import argparse
import asyncio
import json
import time
from urllib.parse import urlsplit

from bench.payloads import delivery_request


async def _connection(host: str, port: int, request: bytes, end: float) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    done = 0
    try:
        while time.perf_counter() < end:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            done += 1
    finally:
        writer.close()
    return done


async def run(url: str, seconds: float, connections: int) -> dict:
    parts = urlsplit(url)
    body, headers = delivery_request()
    head = "".join(f"{key}: {value}\r\n" for key, value in headers.items())
    request = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n{head}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    start = time.perf_counter()
    counts = await asyncio.gather(
        *(
            _connection(parts.hostname, parts.port, request, start + seconds)
            for _ in range(connections)
        )
    )
    elapsed = time.perf_counter() - start
    return {"requests": sum(counts), "seconds": elapsed, "rate": sum(counts) / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.url, args.seconds, args.connections))))


if __name__ == "__main__":
    main()
