"""What the sender pool's pacing saves: CPU per request to a fast receiver.

    python -m bench.sender_pool [--pairs 3] [--batches 15] [--batch 200]

Starts the bench's sink and, in this process, sends batches of `--batch`
POSTs to its /fast/ path through `delivery.pipeline.fair_pool.FairPool` with
WEBHOOK_HTTP_CONCURRENCY's default of 128 threads, as a worker's batch does,
in three ways, interleaved `--pairs` times:

- paced: the pool as shipped (STEADY threads while the process is busy);
- open: every call may start at once (steady = 128, the pool before pacing);
- fixed 8: a pool of 8 threads (the floor: no pacer, no slow receivers).

Prints this process's CPU per request and requests/s for each. Not a test:
figures only, and noisy on a busy machine (compare within a pair). The
requests go through urllib3 (the sender's own client), not delivery's whole
sender, so only the pool differs between the three.
"""

import argparse
import subprocess
import sys
import time

import urllib3

from bench.stack import ROOT
from delivery.pipeline.fair_pool import FairPool

WORKERS = 128  # WEBHOOK_HTTP_CONCURRENCY's default


def _pool(way: str) -> FairPool:
    if way == "fixed 8":
        return FairPool(8, thread_name_prefix="bench-fixed")
    steady = WORKERS if way == "open" else None
    kwargs = {} if steady is None else {"steady": steady}
    return FairPool(WORKERS, thread_name_prefix=f"bench-{way}", **kwargs)


def _measure(way: str, url: str, batches: int, size: int) -> tuple[float, float]:
    http = urllib3.PoolManager(maxsize=WORKERS + 16)
    headers = {"content-type": "application/json", "webhook-id": "pool"}

    def call() -> int:
        return http.request("POST", url, body=b'{"n":1}', headers=headers).status

    pool = _pool(way)
    try:
        for _ in range(3):  # threads and connections made before measuring
            for future in [pool.submit("t", call) for _ in range(size)]:
                future.result()
        cpu, wall = time.process_time(), time.monotonic()
        for _ in range(batches):
            for future in [pool.submit("t", call) for _ in range(size)]:
                assert future.result() == 200
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    finally:
        pool.shutdown()
        http.clear()
    requests = batches * size
    return 1000 * cpu / requests, requests / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--batches", type=int, default=15)
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args()
    sink = subprocess.Popen(
        [sys.executable, "-m", "bench.sink"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        ready = sink.stdout.readline()
        port = int(ready.split("main=")[1].split()[0])
        url = f"http://127.0.0.1:{port}/fast/pool"
        for n in range(1, args.pairs + 1):
            for way in ("paced", "open", "fixed 8"):
                cpu_ms, rate = _measure(way, url, args.batches, args.batch)
                print(f"{n} {way:8} {cpu_ms:.3f} ms CPU per request, {rate:,.0f}/s")
    finally:
        sink.kill()
        sink.wait()


if __name__ == "__main__":
    main()
