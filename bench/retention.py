"""python -m bench.retention [--quick] [--runs N] [--old-rows N] [--steady-seconds S]

Issue 18's retention bench, on the same stack, database and sink as
`python -m bench` (wh_bench_retention unless BENCH_DATABASE_URL says
otherwise):

- burst: the burst scenario as it is, then again with `--old-rows` rows
  (events, their succeeded deliveries and two attempts each, published 40
  days ago) being pruned by `manage.py prune_deliveries` (delivery/
  retention.py, as beat runs it) from just before the first publish: the
  burst's sustained rate with pruning over the one without (target >= 0.90),
  runs interleaved;
- prune alone: the same rows pruned on an idle database (rows/s);
- steady: WEBHOOK_RETENTION=30s, beat pruning every 5 s, a steady stream of
  publishes for `--steady-seconds`; row counts and the three tables' sizes
  (pg_total_relation_size, indexes and TOAST included) sampled as it runs,
  on a private PostgreSQL with autovacuum on: once the first retention
  period has passed they stay flat.

Prints the figures and writes JSON (bench/results/retention.json). Wrap it in
`flock /tmp/bench.lock …` when other benches may run.
"""

import argparse
import dataclasses
import json
import os
import re
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import payloads, scenarios
from bench.analysis import analyse
from bench.context import (
    FULL,
    PUBLISHER,
    QUICK,
    SUBSCRIBER,
    Context,
    prepare_database,
)
from bench.sink_client import Sink
from bench.stack import DEFAULT_REDIS_URL, ROOT, Database
from tests.faults.servers import PrivatePostgres

RESULTS = ROOT / "bench" / "results"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/wh_bench_retention"
TABLES = ("events_event", "delivery_delivery", "delivery_attempt")
DELETED = re.compile(
    r"Deleted (\d+) events, (\d+) deliveries and (\d+) attempts in ([\d.]+) s"
)


def insert_old_rows(database: Database, rows: int) -> dict[str, int]:
    """rows/4 events published 40 days ago, each with one succeeded delivery
    and two attempts: `rows` rows. Set-up, not measured: the foreign-key
    triggers are skipped (the bench's postgres user is a superuser)."""
    events = rows // 4
    connection = database.connect()
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute(
                "SELECT id FROM subscriptions_client WHERE name = %s", [PUBLISHER]
            )
            (client,) = cursor.fetchone()
            old = "now() - interval '40 days' + g * interval '1 millisecond'"
            cursor.execute(
                "INSERT INTO events_event (id, type, payload, occurred_at, "
                "created_at, publisher_id, tenant_id, resource_id) "
                "SELECT md5('e' || g)::uuid, 'DELIVERED', jsonb_build_object("
                "'n', g, 'status', 'delivered', 'note', repeat('x', 200)), "
                f"{old}, {old}, %(client)s, %(client)s, 'OLD' || (g %% 1000) "
                "FROM generate_series(1, %(events)s) AS g",
                {"client": client, "events": events},
            )
            cursor.execute(
                "INSERT INTO delivery_delivery (id, event_id, client_id, kind, "
                "status, attempts_count, backoff_step, expires_at, created_at, "
                "updated_at, delivered_at, last_status_code, last_error) "
                "SELECT md5('d' || g)::uuid, md5('e' || g)::uuid, %(client)s, "
                f"'event', 'succeeded', 2, 1, {old}, {old}, {old}, {old}, 200, '' "
                "FROM generate_series(1, %(events)s) AS g",
                {"client": client, "events": events},
            )
            cursor.execute(
                "INSERT INTO delivery_attempt (delivery_id, number, at, "
                "duration_ms, status_code, outcome, response_excerpt) "
                "SELECT md5('d' || ((g + 1) / 2))::uuid, 1 + g %% 2, "
                f"{old}, 12, 200, 'ack', 'ok' "
                "FROM generate_series(1, %(attempts)s) AS g",
                {"attempts": 2 * events},
            )
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # what autovacuum would have done by now
    finally:
        connection.close()
    return {"events": events, "deliveries": events, "attempts": 2 * events}


def _counts(database: Database) -> dict[str, int]:
    connection = database.connect()
    try:
        with connection.cursor() as cursor:
            counts = {}
            for table in TABLES:
                cursor.execute(
                    f"SELECT count(*), pg_total_relation_size('{table}') FROM {table}"
                )
                rows, size = cursor.fetchone()
                counts[table] = rows
                counts[f"{table}.bytes"] = size
        return counts
    finally:
        connection.close()


def _prune_process(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "prune_deliveries"],
        cwd=ROOT,
        env=env,
        stdout=open(log, "w"),  # noqa: SIM115 - the child owns it
        stderr=subprocess.STDOUT,
    )


def _pruned(log: Path) -> dict[str, float]:
    match = DELETED.search(log.read_text())
    if not match:
        raise RuntimeError(f"prune_deliveries said no figures: {log.read_text()}")
    events, deliveries, attempts, seconds = match.groups()
    rows = int(events) + int(deliveries) + int(attempts)
    return {"rows": rows, "seconds": float(seconds), "rate": rows / float(seconds)}


def burst_while_pruning(ctx: Context, old_rows: int) -> dict[str, float]:
    """The burst scenario, with old rows being pruned while it runs."""
    deadline = ctx.deadline()
    count = ctx.sizes.burst_events
    with ctx.stack("burst-pruning") as run:
        paths = scenarios._spread_webhooks(run, ctx, prefix="B", mode="fast")
        events = scenarios._spread_events(count, prefix="B", paths=paths)
        insert_old_rows(ctx.database, old_rows)
        log = ctx.log_dir / "burst-pruning" / "prune.log"
        prune = _prune_process(run.stack.env, log)
        time.sleep(1.0)  # its first chunks are under way
        published = run.publisher.publish_many(
            events, threads=ctx.publishers, deadline=deadline
        )
        run.wait_received(count, deadline=deadline)
        receipts = run.sink.receipts()
        left = _counts(ctx.database)
        still_pruning = prune.poll() is None
        prune.wait(timeout=max(deadline - time.monotonic(), 60))
    delivered = analyse(published, receipts)
    figures = {
        f"pruning.{key}": value
        for key, value in scenarios._throughput(delivered, published).items()
    }
    figures["pruning.still_pruning_at_burst_end"] = float(still_pruning)
    figures["pruning.old_events_left_at_burst_end"] = left["events_event"] - count
    figures.update({f"pruning.prune_{k}": v for k, v in _pruned(log).items()})
    if delivered.checks()["missing"]:
        raise RuntimeError(f"burst while pruning: {delivered.checks()}")
    return figures


def prune_alone(ctx: Context, old_rows: int, env: dict[str, str]) -> dict[str, float]:
    ctx.database.recreate()
    insert_old_rows(ctx.database, old_rows)
    log = ctx.log_dir / "prune-alone.log"
    _prune_process(env, log).wait(timeout=3600)
    left = _counts(ctx.database)
    assert not any(left[table] for table in TABLES), left
    return {f"alone.prune_{k}": v for k, v in _pruned(log).items()}


def steady_state(ctx: Context, seconds: float, per_second: float) -> dict:
    """Publish at a steady rate with a 30 s retention and beat pruning every
    5 s; sample the tables every 10 s. On a private PostgreSQL with
    autovacuum on, as production runs it (the machine's own may have it off
    for the tests' speed: then nothing ever reuses a deleted row's space)."""
    server = PrivatePostgres(settings={"autovacuum": "on"})
    try:
        steady = _private_context(ctx, server)
        return _steady(steady, seconds, per_second)
    finally:
        server.close()


def _private_context(ctx: Context, server: PrivatePostgres) -> Context:
    database = Database(server.url("wh_bench_steady"))
    _, keys = prepare_database(
        database,
        redis_url=ctx.redis_url,
        log_dir=ctx.log_dir,
        env_extra={},
        prefix="steady-",
    )
    return dataclasses.replace(
        ctx,
        database=database,
        subscriber_key=keys[SUBSCRIBER],
        publisher_key=keys[PUBLISHER],
    )


def _steady(ctx: Context, seconds: float, per_second: float) -> dict:
    env = {"WEBHOOK_RETENTION": "30s", "WEBHOOK_PRUNE_INTERVAL": "5s"}
    samples = []
    with ctx.stack("steady", extra_env=env) as run:
        hook_path = "/fast/steady"
        run.subscriber.create_webhook(url=run.sink.url(hook_path), tracking_id="S")
        stop = threading.Event()

        def publish() -> None:
            started = time.monotonic()
            n = 0
            while not stop.is_set():
                lag = started + n / per_second - time.monotonic()
                if lag > 0:
                    time.sleep(lag)
                run.publisher.publish(payloads.event(seq=n, resource_id="S"))
                n += 1

        thread = threading.Thread(target=publish, daemon=True)
        started = time.monotonic()
        thread.start()
        while time.monotonic() - started < seconds:
            time.sleep(10)
            run.alive()
            samples.append(
                {"t": round(time.monotonic() - started), **_counts(ctx.database)}
            )
        stop.set()
        thread.join(timeout=30)
    half = [s for s in samples if s["t"] >= seconds / 2]
    figures = {}
    for table in TABLES:
        # growth over the second half of the run: 0 when the table is flat
        first, last = half[0][f"{table}.bytes"], half[-1][f"{table}.bytes"]
        figures[f"steady.{table}.bytes_max"] = max(s[f"{table}.bytes"] for s in samples)
        figures[f"steady.{table}.growth_second_half"] = last / first - 1
        figures[f"steady.{table}.rows_max"] = max(s[table] for s in samples)
    return {"figures": figures, "samples": samples}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.retention")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--old-rows", type=int, default=1_000_000)
    parser.add_argument("--steady-seconds", type=float, default=300)
    parser.add_argument("--steady-rate", type=float, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--publishers", type=int, default=12)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument(
        "--parts", default="burst,alone,steady", help="which parts to run, in order"
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    old_rows = 20_000 if args.quick else args.old_rows
    steady_seconds = 40 if args.quick else args.steady_seconds
    stamp = datetime.now(UTC)
    log_dir = RESULTS / "logs" / f"retention-{stamp:%Y%m%dT%H%M%S}"
    log_dir.mkdir(parents=True, exist_ok=True)
    database = Database(os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    redis_url = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL)
    env, keys = prepare_database(
        database, redis_url=redis_url, log_dir=log_dir, env_extra={}
    )
    sink = Sink(log=log_dir / "sink.log")
    ctx = Context(
        sizes=sizes,
        database=database,
        redis_url=redis_url,
        sink=sink,
        subscriber_key=keys[SUBSCRIBER],
        publisher_key=keys[PUBLISHER],
        log_dir=log_dir,
        publishers=args.publishers,
        batch=args.batch,
        workers=args.workers,
    )
    result: dict = {
        "command": "python -m bench.retention " + " ".join(argv or sys.argv[1:]),
        "date": f"{stamp:%Y-%m-%d %H:%M} UTC",
        "load_average_start": os.getloadavg()[0],
        "runs": [],
    }
    try:
        parts = args.parts.split(",")
        for number in range(1, args.runs + 1 if "burst" in parts else 1):
            ctx.log_dir = log_dir / f"run{number}"
            ctx.log_dir.mkdir(parents=True, exist_ok=True)
            base = scenarios.burst(ctx).figures
            pruning = burst_while_pruning(ctx, old_rows)
            run = {**base, **pruning}
            run["ratio"] = pruning["pruning.sustained"] / base["burst.sustained"]
            result["runs"].append(run)
            print(
                f"run {number}: burst {base['burst.sustained']:.0f}/s, while pruning "
                f"{pruning['pruning.sustained']:.0f}/s (x{run['ratio']:.3f}); prune "
                f"{pruning['pruning.prune_rows']:.0f} rows at "
                f"{pruning['pruning.prune_rate']:.0f} rows/s",
                flush=True,
            )
        ctx.log_dir = log_dir
        if "alone" in parts:
            result["alone"] = prune_alone(ctx, old_rows, env)
            print(f"prune alone: {result['alone']}", flush=True)
        if "steady" in parts:
            result["steady"] = steady_state(ctx, steady_seconds, args.steady_rate)
            print(f"steady: {json.dumps(result['steady']['figures'])}", flush=True)
    finally:
        sink.stop()
        result["load_average_end"] = os.getloadavg()[0]
        name = "-".join(["retention", *parts, *(["quick"] if args.quick else [])])
        path = RESULTS / f"{name}.json"
        path.write_text(json.dumps(result, indent=2, default=str))
        print(f"JSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
