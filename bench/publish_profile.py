"""Where one `POST /api/v1/events` spends its time, in-process.

    python -m bench.publish_profile [--events 2000] [--profile 300] [--json PATH]

Migrates its own database (wh_bench_profile unless BENCH_PROFILE_DATABASE_URL
says otherwise; the name must start with wh_bench, as the bench's own), uses
Redis db 6 (BENCH_PROFILE_REDIS_URL) for the throttle and the broker (no
worker consumes: the db is flushed before and after), creates a publisher key
and 20 trackingId webhooks, then drives the whole Django stack (middleware,
DRF, the view) through django.test.Client, one thread, one event per request:

- the PostgreSQL statements of one publish (CaptureQueriesContext);
- per publish: wall time, this process's CPU time, and the wall time spent in
  SQL (an execute wrapper), in the throttle's Redis calls and in the wake-up's
  broker send (both timed around the calls);
- a cProfile of `--profile` publishes (top functions by own time);
- the in-process `events.services.publish_event` loop: events/s committed with
  their deliveries.

Prints one human summary and writes JSON. Not a test: figures only.
"""

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import time
from pathlib import Path

from bench.stack import ROOT, Database, django_here, flush_redis

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/wh_bench_profile"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/6"
WEBHOOKS = 20


class _Timer:
    """Wall seconds spent inside wrapped calls, and how many there were."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0

    def wrap(self, function):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started
                self.calls += 1

        timed.__wrapped__ = function
        return timed

    def sql_wrapper(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started
            self.calls += 1


def _event(n: int) -> dict:
    return {
        "type": "IN_TRANSIT",
        "resource_id": f"P{n % WEBHOOKS}",
        "payload": {"status": "in transit", "seq": n, "hub": "bench"},
    }


def run(args: argparse.Namespace) -> dict:
    import django

    django.setup()
    from django.db import connection
    from django.test import Client as HttpClient
    from django.test.utils import CaptureQueriesContext

    from delivery.pipeline import wakeups
    from events import services as event_services
    from subscriptions import services as subscription_services
    from subscriptions.models import Client
    from subscriptions.throttling import ApiKeyRateThrottle

    _, key = subscription_services.create_api_key(
        client_name="bench-platform", scopes=["publish"]
    )
    subscriber = Client.objects.create(name="bench-acme")
    for n in range(WEBHOOKS):
        subscription_services.create_subscription(
            client=subscriber,
            config=subscription_services.WebhookConfig(
                url=f"https://receiver.example.com/p{n}", event_groups=["IN_TRANSIT"]
            ),
            tracking_id=f"P{n}",
        )
    # A host ALLOWED_HOSTS accepts (testserver is not one outside tests).
    http = HttpClient(HTTP_AUTHORIZATION=f"Bearer {key}", HTTP_HOST="localhost")

    def publish(n: int) -> None:
        response = http.post(
            "/api/v1/events", json.dumps(_event(n)), content_type="application/json"
        )
        if response.status_code != 202:
            raise RuntimeError(f"publish answered {response.status_code}: {response}")

    seq = iter(range(10**9))
    for _ in range(200):  # warm: imports, connections, caches
        publish(next(seq))

    with CaptureQueriesContext(connection) as captured:
        publish(next(seq))
    statements = [query["sql"] for query in captured.captured_queries]

    sql, redis_timer, broker = _Timer(), _Timer(), _Timer()
    allow_request = ApiKeyRateThrottle.allow_request
    send_wakeups = wakeups.send_wakeups
    ApiKeyRateThrottle.allow_request = redis_timer.wrap(allow_request)
    wakeups.send_wakeups = broker.wrap(send_wakeups)
    try:
        with connection.execute_wrapper(sql.sql_wrapper):
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(args.events):
                publish(next(seq))
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        ApiKeyRateThrottle.allow_request = allow_request
        wakeups.send_wakeups = send_wakeups

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(args.profile):
        publish(next(seq))
    profiler.disable()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    parts = _breakdown(stats, args.profile)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)

    publisher = Client.objects.get(name="bench-platform")
    started = time.perf_counter()
    for _ in range(args.events):
        n = next(seq)
        event_services.publish_event(
            publisher=publisher,
            type="IN_TRANSIT",
            resource_id=f"P{n % WEBHOOKS}",
            payload={"status": "in transit", "seq": n},
        )
    in_process = args.events / (time.perf_counter() - started)

    n = args.events
    return {
        "events": n,
        "queries_per_publish": len(statements),
        "statements": statements,
        "wall_ms": wall / n * 1000,
        "cpu_ms": cpu / n * 1000,
        "sql_ms": sql.seconds / n * 1000,
        "sql_statements": sql.calls / n,
        "throttle_ms": redis_timer.seconds / n * 1000,
        "broker_ms": broker.seconds / n * 1000,
        "broker_sends": broker.calls / n,
        "requests_per_s": n / wall,
        "publish_event_per_s": in_process,
        "profile_parts_ms": parts,
        "profile": text.getvalue(),
    }


# Where a profiled publish spends its time: (label, file suffix, function).
_PARTS = (
    ("whole request (test client)", "bench/publish_profile.py", "publish"),
    ("DRF authentication (API key)", "subscriptions/auth.py", "authenticate"),
    ("DRF throttle", "subscriptions/throttling.py", "allow_request"),
    ("request parsing (JSON)", "rest_framework/request.py", "_parse"),
    ("serializer validation", "rest_framework/serializers.py", "is_valid"),
    ("publish_events()", "events/services.py", "publish_events"),
    ("wake-ups", "delivery/services.py", "wake_workers"),
    ("response rendering", "rest_framework/response.py", "rendered_content"),
)


def _breakdown(stats: pstats.Stats, publishes: int) -> dict[str, float]:
    """Cumulative ms per publish (under the profiler) of the _PARTS functions."""
    found: dict[str, float] = {}
    for (path, _line, function), row in stats.stats.items():  # type: ignore[attr-defined]
        for label, suffix, name in _PARTS:
            if function == name and path.endswith(suffix):
                found[label] = found.get(label, 0.0) + row[3] / publishes * 1000
    return {label: found[label] for label, _, _ in _PARTS if label in found}


def summary(result: dict) -> str:
    lines = [
        f"one publish through the Django stack ({result['events']} in a loop, "
        "one thread):",
        f"  wall {result['wall_ms']:.2f} ms, CPU of this process "
        f"{result['cpu_ms']:.2f} ms ({result['requests_per_s']:,.0f} req/s)",
        f"  PostgreSQL: {result['queries_per_publish']} statements, "
        f"{result['sql_ms']:.2f} ms wall in execute",
        f"  throttle (Redis): {result['throttle_ms']:.2f} ms wall",
        f"  wake-ups (broker): {result['broker_ms']:.2f} ms wall, "
        f"{result['broker_sends']:.2f} sends per publish",
        f"  in-process publish_event loop: {result['publish_event_per_s']:,.0f} "
        "events/s",
        "  cProfile, cumulative ms per publish (profiler overhead included):",
        *(f"    {label}: {ms:.2f}" for label, ms in result["profile_parts_ms"].items()),
        "  statements:",
        *(f"    {n + 1}. {sql[:150]}" for n, sql in enumerate(result["statements"])),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.publish_profile")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--profile", type=int, default=300)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--print-profile", action="store_true")
    args = parser.parse_args(argv)
    log_dir = ROOT / "bench" / "results" / "profile"
    log_dir.mkdir(parents=True, exist_ok=True)
    redis_url = os.environ.get("BENCH_PROFILE_REDIS_URL", DEFAULT_REDIS_URL)
    database = Database(
        os.environ.get("BENCH_PROFILE_DATABASE_URL", DEFAULT_DATABASE_URL)
    )
    django_here(database, redis_url=redis_url, log_dir=log_dir)
    flush_redis(redis_url)
    try:
        result = run(args)
    finally:
        flush_redis(redis_url)
    print(summary(result))
    if args.print_profile:
        print(result["profile"])
    path = args.json or log_dir / "latest.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"JSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
