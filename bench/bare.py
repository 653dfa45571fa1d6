"""The bare ceiling: one process POSTing to the sink with a pooled requests.Session.

This is what the issue compares the service with: the same delivery body and
headers, sent one after another, as fast as one Python process can. Prints
one JSON line: {"requests": n, "seconds": s, "rate": n/s, "errors": e}.

Run: python -m bench.bare --url http://127.0.0.1:PORT/fast/bare --seconds 5
"""

import argparse
import json
import time

import requests

from bench.payloads import delivery_request


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    session = requests.Session()
    session.trust_env = False
    body, headers = delivery_request()
    # Warm the pool and the interpreter before the clock starts.
    for _ in range(20):
        session.post(args.url, data=body, headers=headers, timeout=5).close()
    done = errors = 0
    start = time.perf_counter()
    end = start + args.seconds
    while time.perf_counter() < end:
        headers["webhook-id"] = f"bare-{done}"
        response = session.post(args.url, data=body, headers=headers, timeout=5)
        response.close()  # reads the (tiny) body and returns the connection
        if response.ok:
            done += 1
        else:
            errors += 1
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "requests": done,
                "seconds": seconds,
                "rate": done / seconds,
                "errors": errors,
            }
        )
    )


if __name__ == "__main__":
    main()
