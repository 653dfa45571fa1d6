"""What fair claiming costs: the claim's statements against oldest-first alone.

    python -m bench.claim_timing [--rounds 8] [--limit 200] [--json PATH]

Migrates its own database (wh_bench_claims unless BENCH_CLAIMS_DATABASE_URL
says otherwise; the name must start with wh_bench), fills delivery_delivery
for each case below (INSERT ... SELECT generate_series, foreign keys off,
then VACUUM ANALYZE) and times, alternately, the worker's claim
(`claiming._claim_postgresql`: the due tenants, then the oldest-first or the
fair statement) and the oldest-first UPDATE alone (the claim before issue
19), both returning the claimed rows with their events (one event for all
rows), each in a transaction rolled back, so every try sees the same rows.
Prints the median of `--rounds` medians of 5 tries, and who got the rows.
Not a test: figures only, and noisy on a busy machine (compare the pairs).
"""

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

from bench.stack import ROOT, Database, django_here

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/wh_bench_claims"
# Only for the settings: nothing here uses Redis.
REDIS_URL = "redis://127.0.0.1:6379/6"

EVENT_ID = "00000000-0000-0000-0000-0000000c1a1e"

# name -> [(client id, due rows, rows due hours ahead)]
CASES = {
    "one tenant, 50,000 due": [(1, 50_000, 0)],
    "A 50,000 due + B 10 due": [(1, 50_000, 0), (2, 10, 0)],
    "one tenant, 200 due + 1,000,000 ahead": [(1, 200, 1_000_000)],
    "10 tenants x 5,000 due": [(c, 5_000, 0) for c in range(1, 11)],
    "100 tenants x 100 (60 due)": [(c, 100, 0) for c in range(1, 101)],
}


def _fill(cursor, tenants) -> None:
    cursor.execute("TRUNCATE delivery_delivery CASCADE")
    cursor.execute(
        "INSERT INTO subscriptions_client (id, name, created_at, updated_at, "
        "notification_secret, notification_url) "
        "SELECT c, 'claims-' || c, now(), now(), '', '' "
        "FROM generate_series(1, 100) c "
        "ON CONFLICT DO NOTHING"
    )
    cursor.execute("SET session_replication_role = replica")
    # One event for every row: the claim reads each claimed row's event.
    cursor.execute(
        "INSERT INTO events_event (id, publisher_id, type, payload, occurred_at, "
        "created_at) VALUES (%s, 1, 'CLAIMS', '{}', now(), now()) "
        "ON CONFLICT DO NOTHING",
        [EVENT_ID],
    )
    for client, due, ahead in tenants:
        # Tenant c's due rows start c minutes later than tenant 1's (in the
        # last case, tenants 61-100 only become due in the future).
        for count, start in (
            (due, "now() - interval '1 hour'"),
            (ahead, "now() + interval '2 hours'"),
        ):
            if count:
                cursor.execute(
                    "INSERT INTO delivery_delivery (id, event_id, subscription_id, "
                    "client_id, kind, status, attempts_count, backoff_step, "
                    "next_attempt_at, expires_at, created_at, updated_at, last_error) "
                    "SELECT gen_random_uuid(), %s, gen_random_uuid(), "
                    f"%s, 'event', 'pending', 0, 0, {start} + %s * interval '1 minute' "
                    "+ g * interval '1 millisecond', now() + interval '1 day', "
                    "now(), now(), '' FROM generate_series(1, %s) g",
                    [EVENT_ID, client, client, count],
                )
    cursor.execute("SET session_replication_role = DEFAULT")


def _time(claim, rounds: int) -> tuple[float, Counter]:
    from django.db import connection, transaction

    medians, got = [], []
    for _ in range(rounds):
        tries = []
        for _ in range(5):
            with transaction.atomic():
                started = time.perf_counter()
                ids = claim()
                tries.append((time.perf_counter() - started) * 1000)
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT client_id FROM delivery_delivery WHERE id = ANY(%s)",
                        [ids],
                    )
                    got = [row[0] for row in cursor.fetchall()]
                transaction.set_rollback(True)
        medians.append(statistics.median(tries))
    return statistics.median(medians), Counter(got)


def run(args: argparse.Namespace) -> dict:
    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    from delivery.pipeline import claiming

    results = {}
    for name, tenants in CASES.items():
        with connection.cursor() as cursor:
            _fill(cursor, tenants)
            cursor.execute("VACUUM ANALYZE delivery_delivery")

        def fair():
            now = timezone.now()
            claimed = claiming._claim_postgresql(
                limit=args.limit,
                now=now,
                until=now + timedelta(minutes=1),
                token=uuid.uuid4(),
                skip=[],
            )
            return [delivery.id for delivery in claimed]

        def oldest():
            now = timezone.now()
            until = now + timedelta(minutes=1)
            with connection.cursor() as cursor:
                cursor.execute(
                    claiming._OLDEST_CLAIM_ROWS,
                    [until, uuid.uuid4(), "pending", now, args.limit],
                )
                return [
                    delivery.id for delivery in claiming._claimed(cursor.fetchall())
                ]

        _time(fair, 1), _time(oldest, 1)  # warm caches and plans
        row = {}
        for label, claim in (("oldest_first", oldest), ("fair", fair)):
            ms, by_tenant = _time(claim, args.rounds)
            row[f"{label}_ms"] = ms
            row[f"{label}_tenants"] = len(by_tenant)
            row[f"{label}_first_two"] = [by_tenant.get(1, 0), by_tenant.get(2, 0)]
        results[name] = row
        print(
            f"{name:40s} oldest-first {row['oldest_first_ms']:6.2f} ms "
            f"({row['oldest_first_tenants']} tenants)   fair {row['fair_ms']:6.2f} ms "
            f"({row['fair_tenants']} tenants; tenants 1 and 2 got "
            f"{row['fair_first_two']})",
            flush=True,
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.claim_timing")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    log_dir = ROOT / "bench" / "results" / "claims"
    log_dir.mkdir(parents=True, exist_ok=True)
    database = Database(
        os.environ.get("BENCH_CLAIMS_DATABASE_URL", DEFAULT_DATABASE_URL)
    )
    django_here(database, redis_url=REDIS_URL, log_dir=log_dir)
    results = run(args)
    path = args.json or log_dir / "latest.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"JSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
