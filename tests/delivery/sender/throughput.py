"""Throughput of delivery.sender.http.send() against a bare requests.Session loop.

Not a test (timed checks belong in bench/): a measurement to run by hand.
Starts `bench.sink` (the fast asyncio receiver) in its own process, then, one
after another in this process, for --seconds each:

- bare:           a pooled requests.Session(trust_env=False) POST loop
- send:           send() with the guard lifted (WEBHOOK_ALLOW_PRIVATE_DESTINATIONS)
- send+guard:     send() with the guard on (127.0.0.1 exempted so the sink can
                  stand in for a public host): resolve, vet, pinned connect
- send, N threads: send() from a thread pool, guard on, as workers call it

Run: DATABASE_URL=... REDIS_URL=... python -m tests.delivery.sender.throughput
"""

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import django

BODY = json.dumps(
    {
        "id": "5f1d2b7e-0000-4000-8000-000000000000",
        "type": "DELIVERED",
        "subtype": None,
        "resource_id": "TESTPACKAGEDELIVERED",
        "user_id": "u-42",
        "resource_url": "https://platform.example.com/api/parcels/TESTPACKAGEDELIVERED",
        "subscription_id": "1234abcd-0000-4000-8000-000000000000",
        "payload": {"status": "delivered"},
        "timestamp": "2026-11-22T10:00:00Z",
    }
).encode()
HEADERS = {
    "Content-Type": "application/json",
    "User-Agent": "webhooks/1.0",
    "X-Webhook-Event": "DELIVERED",
    "webhook-id": "5f1d2b7e",
    "webhook-timestamp": "1763805600",
    "webhook-signature": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
}


def rate(label: str, seconds: float, one: Callable[[], bool], threads: int = 1) -> None:
    for _ in range(50):
        one()  # warm pools and the interpreter
    done = errors = 0
    cpu = time.process_time()
    start = time.perf_counter()
    end = start + seconds
    if threads == 1:
        while time.perf_counter() < end:
            if one():
                done += 1
            else:
                errors += 1
    else:

        def loop() -> tuple[int, int]:
            ok = bad = 0
            while time.perf_counter() < end:
                if one():
                    ok += 1
                else:
                    bad += 1
            return ok, bad

        with ThreadPoolExecutor(threads) as pool:
            for ok, bad in pool.map(lambda _: loop(), range(threads)):
                done, errors = done + ok, errors + bad
    elapsed = time.perf_counter() - start
    # CPU time of this process per request: what a busy machine cannot blur.
    cpu_us = (time.process_time() - cpu) / max(done, 1) * 1e6
    print(
        f"{label:<26} {done / elapsed:6.0f} req/s  {cpu_us:5.0f} µs CPU/req  "
        f"({done} in {elapsed:.1f} s, {errors} errors)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webhooks_project.settings")
    django.setup()
    import requests
    from django.conf import settings

    from delivery.sender import ssrf
    from delivery.sender.http import send
    from delivery.sender.types import OutboundRequest

    sink = subprocess.Popen(
        [sys.executable, "-m", "bench.sink"], stdout=subprocess.PIPE, text=True
    )
    try:
        ready = sink.stdout.readline().split()
        port = dict(part.split("=") for part in ready[1:])["main"]
        url = f"http://127.0.0.1:{port}/fast/sender"

        session = requests.Session()
        session.trust_env = False

        def bare() -> bool:
            response = session.post(url, data=BODY, headers=HEADERS, timeout=5)
            _ = response.content  # read the body, as send() does
            return response.ok

        def via_send() -> bool:
            result = send(OutboundRequest(url=url, body=BODY, headers=HEADERS))
            return result.status_code == 200

        rate("bare requests.Session", args.seconds, bare)
        settings.WEBHOOK_ALLOW_PRIVATE_DESTINATIONS = True
        rate("send()", args.seconds, via_send)
        settings.WEBHOOK_ALLOW_PRIVATE_DESTINATIONS = False
        real = ssrf.blocked_reason
        ssrf.blocked_reason = lambda ip: None if str(ip) == "127.0.0.1" else real(ip)
        rate("send() + guard", args.seconds, via_send)
        rate(
            f"send() + guard, {args.threads} thr",
            args.seconds,
            via_send,
            threads=args.threads,
        )
    finally:
        sink.terminate()
        sink.wait(timeout=10)


if __name__ == "__main__":
    main()
