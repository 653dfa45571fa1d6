"""The scenarios of issues 5 and 19 (noisy neighbour). Each starts its own
stack on a fresh database and returns an Outcome: figures (key -> number),
delivery checks, details."""

import random
import sys
import time
from dataclasses import dataclass, field

from bench import payloads, peers, procs
from bench.analysis import (
    RssSampler,
    analyse,
    end_to_end_rate,
    percentile,
    sustained_rate,
)
from bench.api import Api, Published
from bench.context import SUBSCRIBER, Context, Running
from bench.stack import ROOT, Database, manage, postgres_groups


@dataclass
class Outcome:
    figures: dict = field(default_factory=dict)
    checks: dict | None = None
    details: dict = field(default_factory=dict)


def _spread_webhooks(
    run: Running, ctx: Context, *, prefix: str, mode: str
) -> list[str]:
    """ctx.sizes.webhooks webhooks, each tracking its own resource id; their paths."""
    paths = [f"/{mode}/{prefix.lower()}{i}" for i in range(ctx.sizes.webhooks)]
    specs = [
        {"url": run.sink.url(path), "tracking_id": f"{prefix}{i}"}
        for i, path in enumerate(paths)
    ]
    run.subscriber.create_webhooks(specs, threads=4, deadline=ctx.deadline())
    return paths


def _spread_events(count: int, *, prefix: str, paths: list[str]) -> list:
    """Public events, event n about resource prefix{n % len(paths)}: each is
    delivered to exactly one webhook."""
    return [
        (
            payloads.event(seq=n, resource_id=f"{prefix}{n % len(paths)}"),
            (paths[n % len(paths)],),
        )
        for n in range(count)
    ]


def _throughput(delivered, published) -> dict:
    sent = [item.sent for item in published]
    answered = [item.answered for item in published]
    return {
        "sustained": sustained_rate(delivered.done),
        "end_to_end": end_to_end_rate(delivered),
        "publish_rate": len(published) / (max(answered) - min(sent)) if sent else None,
        "p50_ms": percentile(delivered.latencies_ms, 50),
        "p99_ms": percentile(delivered.latencies_ms, 99),
    }


def burst(ctx: Context) -> Outcome:
    """1 (and 7): N events as fast as the publishers go, one webhook each."""
    deadline = ctx.deadline()
    count = ctx.sizes.burst_events
    with ctx.stack("burst") as run:
        paths = _spread_webhooks(run, ctx, prefix="B", mode="fast")
        events = _spread_events(count, prefix="B", paths=paths)
        with RssSampler(lambda: run.stack.pids("worker")) as rss:
            published = run.publisher.publish_many(
                events, threads=ctx.publishers, deadline=deadline
            )
            run.wait_received(count, deadline=deadline)
        receipts = run.sink.receipts()
    delivered = analyse(published, receipts)
    figures = {f"burst.{k}": v for k, v in _throughput(delivered, published).items()}
    if delivered.done:
        figures.update(rss.figures(delivered.first_sent, delivered.done[-1]))
    return Outcome(figures=figures, checks=delivered.checks())


def _cpu_groups(run: Running, database: Database) -> dict:
    """The stack's parts whose CPU 1c reports per event."""
    return {
        "web": lambda: run.stack.pids("web"),
        "worker": lambda: run.stack.pids("worker"),
        "beat": lambda: run.stack.pids("beat"),
        **postgres_groups(database),
        "redis": lambda: procs.pids_named("redis-server"),
        "sink": lambda: procs.group_pids(run.sink.process.pid),
    }


# Issue 13: a platform publishes each event as it happens, from 16 threads.
SINGLE_PUBLISHERS = 16
# 1d's second loop: publish_event from this many threads of one process.
INPROCESS_THREADS = 4


def single(ctx: Context) -> Outcome:
    """1c: one event per POST /api/v1/events from 16 publishers, one webhook
    each; alone on the machine before and after it, the publish ceiling (a
    minimal Django view on the same gunicorn settings, the same publishers);
    then django-webhook (bench/peers.py)."""
    count = ctx.sizes.single_events
    # The ceiling brackets 1c: taken alone before it and after it, their mean
    # the denominator, so a machine whose speed drifts during the run (by a
    # third within minutes on a shared host) weighs on both sides alike.
    before = peers.publish_ceiling(
        ctx, count=count, threads=SINGLE_PUBLISHERS, name="ceiling-before"
    )
    deadline = ctx.deadline()
    with ctx.stack("single") as run:
        paths = _spread_webhooks(run, ctx, prefix="N", mode="fast")
        events = _spread_events(count, prefix="N", paths=paths)
        publisher = Api(run.stack.base_url, ctx.publisher_key, batch=1)
        cpu = procs.CpuShares(_cpu_groups(run, ctx.database))
        transactions = ctx.database.transactions()
        published = publisher.publish_many(
            events, threads=SINGLE_PUBLISHERS, deadline=deadline
        )
        run.wait_received(count, deadline=deadline)
        shares = cpu.per_event(count)
        # Every process's statements (publishes, claims, records, beat).
        time.sleep(1)  # each backend reports its counts within a second
        per_event = (ctx.database.transactions() - transactions) / count
        print(
            f" (CPU ms per event: {procs.CpuShares.describe(shares)}; "
            f"PostgreSQL transactions per event {per_event:.2f})",
            end="",
            flush=True,
        )
        receipts = run.sink.receipts()
    delivered = analyse(published, receipts)
    figures = {f"single.{k}": v for k, v in _throughput(delivered, published).items()}
    details: dict = {
        "publishers": SINGLE_PUBLISHERS,
        "cpu_ms_per_event": shares,
        "postgres_transactions_per_event": per_event,
    }
    # The ceiling and the peer run alone on the machine: not beside the
    # autovacuum and checkpoint that 1c's writes would start.
    ctx.database.settle()
    after = peers.publish_ceiling(
        ctx, count=count, threads=SINGLE_PUBLISHERS, name="ceiling-after"
    )
    details["ceiling"] = {"before": before, "after": after}
    figures["single.ceiling"] = (before["rate"] + after["rate"]) / 2
    try:
        peer = peers.django_webhook(
            ctx, count=ctx.sizes.peer_events, threads=SINGLE_PUBLISHERS
        )
    except Exception as exc:  # the service's figures stand without the peer's
        details["peer_error"] = f"{type(exc).__name__}: {exc}"
        print(f" (django-webhook: {details['peer_error']})", end="", flush=True)
    else:
        details["peer"] = peer
        figures["single.peer"] = peer["rate"]
        sustained = figures["single.sustained"]
        if sustained and peer["rate"]:
            figures["single.peer_ratio"] = sustained / peer["rate"]
    return Outcome(figures=figures, checks=delivered.checks(), details=details)


def inprocess(ctx: Context) -> Outcome:
    """1d: events.services.publish_event in a loop in one process (one thread,
    then INPROCESS_THREADS), each event committed with its delivery before the
    next; the stack's workers deliver them meanwhile."""
    deadline = ctx.deadline()
    count = ctx.sizes.single_events
    figures: dict = {}
    checks: dict = {}
    details: dict = {}
    received = 0
    with ctx.stack("inprocess") as run:
        paths = _spread_webhooks(run, ctx, prefix="P", mode="fast")
        for threads, key in ((1, "inprocess"), (INPROCESS_THREADS, "inprocess_t")):
            result = procs.run_json(
                [sys.executable, "-m", "bench.inprocess", "--events", str(count)]
                + ["--prefix", "P", "--webhooks", str(len(paths))]
                + ["--threads", str(threads)],
                env=run.stack.env,
                cwd=ROOT,
                log=run.stack.log(f"inprocess-{threads}"),
                timeout=max(deadline - time.monotonic(), 1),
            )
            published = [
                Published(n, sent, answered, 202, event_id, 1, (paths[n % len(paths)],))
                for n, (event_id, sent, answered) in enumerate(result.pop("published"))
            ]
            received += count
            run.wait_received(received, deadline=deadline)
            delivered = analyse(published, run.sink.receipts())
            figures[f"{key}.rate"] = result["rate"]
            figures[f"{key}.p50_ms"] = percentile(delivered.latencies_ms, 50)
            checks = _sum_checks(checks, delivered.checks())
            details[key] = result
    return Outcome(figures=figures, checks=checks, details=details)


def _sum_checks(a: dict, b: dict) -> dict:
    return {key: a.get(key, 0) + value for key, value in b.items()}


def drain(ctx: Context) -> Outcome:
    """1b: N deliveries already due (published while the worker was stopped),
    then the worker starts: how fast it drains them, free of publishing load."""
    deadline = ctx.deadline()
    count = ctx.sizes.burst_events
    with ctx.stack("drain") as run:
        paths = _spread_webhooks(run, ctx, prefix="D", mode="fast")
        run.stack.stop("worker")
        events = _spread_events(count, prefix="D", paths=paths)
        published = run.publisher.publish_many(
            events, threads=ctx.publishers, deadline=deadline
        )
        started = time.time()
        run.stack.start("worker")
        run.wait_received(count, deadline=deadline)
        receipts = run.sink.receipts()
    delivered = analyse(published, receipts)
    figures = {"drain.sustained": sustained_rate(delivered.done)}
    if delivered.done:
        figures["drain.all_s"] = delivered.done[-1] - started
    return Outcome(figures=figures, checks=delivered.checks())


def idle(ctx: Context) -> Outcome:
    """2: events one at a time on an idle system, each waited for."""
    deadline = ctx.deadline()
    jitter = random.Random(5)
    with ctx.stack("idle") as run:
        path = "/fast/idle"
        run.subscriber.create_webhook(url=run.sink.url(path), tracking_id="IDLE")
        published = []
        for n in range(ctx.sizes.idle_events):
            event = payloads.event(seq=n, resource_id="IDLE")
            published.append(run.publisher.publish(event, index=n, paths=(path,)))
            per_event = min(deadline, time.monotonic() + 10)
            if not run.sink.wait_until(
                lambda stats, n=n: stats["counts"].get("fast", 0) > n,
                deadline=per_event,
                interval=0.002,
                alive=run.alive,
            ):
                break
            # An idle gap, varied so it cannot line up with a periodic sweep.
            time.sleep(jitter.uniform(0.02, 0.12))
        receipts = run.sink.receipts()
    delivered = analyse(published, receipts)
    return Outcome(
        figures={
            "idle.p50_ms": percentile(delivered.latencies_ms, 50),
            "idle.p99_ms": percentile(delivered.latencies_ms, 99),
            "idle.max_ms": max(delivered.latencies_ms, default=None),
        },
        checks=delivered.checks(),
    )


def slow(ctx: Context) -> Outcome:
    """3: every receiver takes 1 s to answer."""
    deadline = ctx.deadline()
    count = ctx.sizes.slow_deliveries
    with ctx.stack("slow") as run:
        paths = _spread_webhooks(run, ctx, prefix="S", mode="slow")
        events = _spread_events(count, prefix="S", paths=paths)
        published = run.publisher.publish_many(
            events, threads=ctx.publishers, deadline=deadline
        )
        run.wait_received(count, deadline=deadline, mode="slow", answered=True)
        receipts = run.sink.receipts()
    delivered = analyse(published, receipts)
    return Outcome(
        figures={
            "slow.sustained": sustained_rate(delivered.done),
            "slow.end_to_end": end_to_end_rate(delivered),
        },
        checks=delivered.checks(),
    )


def fanout(ctx: Context) -> Outcome:
    """4: one tenant event to every one of N webhooks of that tenant."""
    deadline = ctx.deadline()
    count = ctx.sizes.fanout_subscriptions
    with ctx.stack("fanout") as run:
        paths = [f"/fast/f{i}" for i in range(count)]
        started = time.monotonic()
        run.subscriber.create_webhooks(
            [{"url": run.sink.url(path)} for path in paths],
            threads=ctx.publishers,
            deadline=deadline,
        )
        setup_s = time.monotonic() - started
        item = run.publisher.publish(
            payloads.event(seq=0, tenant=SUBSCRIBER), paths=tuple(paths)
        )
        run.wait_received(count, deadline=deadline)
        receipts = run.sink.receipts()
    delivered = analyse([item], receipts)
    checks = delivered.checks()
    checks["deliveries_in_202"] = item.deliveries
    return Outcome(
        figures={
            "fanout.accept_ms": (item.answered - item.sent) * 1000,
            "fanout.all_received_s": (
                delivered.done[-1] - item.sent if delivered.done else None
            ),
            "fanout.setup_s": setup_s,
        },
        checks=checks,
    )


def dead(ctx: Context, *, timeout: str) -> Outcome:
    """5: 20% of the webhooks refuse connections or hang; the rest are healthy."""
    deadline = ctx.deadline()
    count = ctx.sizes.burst_events
    refused_port = procs.free_port()
    with ctx.stack(
        "dead",
        extra_env={"WEBHOOK_TIMEOUT": timeout},
        # Refused by the host, not by the SSRF guard.
        allow=(f"127.0.0.1:{refused_port}",),
    ) as run:
        urls, paths = [], []
        for i in range(ctx.sizes.webhooks):
            if i % 10 == 0:  # a host that refuses: nothing listens on the port
                path = f"/refused/r{i}"
                urls.append(f"http://127.0.0.1:{refused_port}{path}")
            elif i % 10 == 5:  # another host that accepts and never answers
                path = f"/hang/h{i}"
                urls.append(run.sink.url(path, aux=True))
            else:
                path = f"/fast/h{i}"
                urls.append(run.sink.url(path))
            paths.append(path)
        run.subscriber.create_webhooks(
            [{"url": url, "tracking_id": f"X{i}"} for i, url in enumerate(urls)],
            threads=4,
            deadline=deadline,
        )
        events = _spread_events(count, prefix="X", paths=paths)
        healthy = sum(1 for _, (path,) in events if path.startswith("/fast/"))
        published = run.publisher.publish_many(
            events, threads=ctx.publishers, deadline=deadline
        )
        run.wait_received(healthy, deadline=deadline)
        hang_requests = run.sink.count("hang")
        receipts = run.sink.receipts()
    delivered = analyse(
        published, receipts, keep=lambda path: path.startswith("/fast/")
    )
    return Outcome(
        figures={
            "dead.healthy_sustained": sustained_rate(delivered.done),
            "dead.healthy_end_to_end": end_to_end_rate(delivered),
            "dead.hang_requests": hang_requests,
        },
        checks=delivered.checks(),
        details={"webhook_timeout": timeout, "dead_share": 0.2},
    )


def backlog(ctx: Context) -> Outcome:
    """6: N deliveries scheduled hours ahead: idle CPU, one dispatch pass."""
    rows = ctx.sizes.backlog_rows
    with ctx.stack("backlog") as run:
        hook = run.subscriber.create_webhook(
            url=run.sink.url("/fast/backlog"), tracking_id="BACKLOG"
        )
        item = run.publisher.publish(payloads.event(seq=0, resource_id="BACKLOG"))
        run.wait_received(1, deadline=ctx.deadline())
        started = time.monotonic()
        _insert_backlog(
            ctx, rows=rows, event_id=item.event_id, subscription_ids=[hook["id"]]
        )
        insert_s = time.monotonic() - started
        time.sleep(ctx.sizes.settle_seconds)
        groups = {name: run.stack.pids(name) for name in ("worker", "beat", "web")}
        before = {name: procs.cpu_seconds(pids) for name, pids in groups.items()}
        wall = time.monotonic()
        time.sleep(ctx.sizes.idle_cpu_seconds)
        wall = time.monotonic() - wall
        cpu = {
            name: (procs.cpu_seconds(pids) - before[name]) / wall * 100
            for name, pids in groups.items()
        }
        probe = procs.run_json(
            [sys.executable, "-m", "bench.probe", "--passes", "5"],
            env=run.stack.env,
            cwd=ROOT,
            log=run.stack.log("probe"),
            timeout=120,
        )
        sent_early = run.sink.count("fast") - 1
    figures = {
        "backlog.rows": rows,
        "backlog.insert_s": insert_s,
        "backlog.cpu_worker_pct": cpu["worker"],
        "backlog.cpu_beat_pct": cpu["beat"],
        "backlog.cpu_web_pct": cpu["web"],
        "backlog.cpu_pct": cpu["worker"] + cpu["beat"],
        "backlog.sent_early": sent_early,
    }
    if "error" not in probe:
        figures["backlog.dispatch_ms"] = probe["median_ms"]
        figures["backlog.index_scan"] = probe["index_scan"]
    return Outcome(figures=figures, details={"probe": probe, "idle_seconds": wall})


# Noisy neighbour: B's owner, a second subscribing tenant (A is SUBSCRIBER).
NEIGHBOUR = "bench-neighbour"


def noisy(ctx: Context) -> Outcome:
    """8 (issue 19): tenant A has N due deliveries to slow receivers (1 s);
    while they drain, tenant B's events, published one per POST at a steady
    pace, go to fast receivers. B's publish->receipt latency, and A's
    throughput in the windows before, during and after B's publishing."""
    sizes = ctx.sizes
    deadline = ctx.deadline()
    with ctx.stack("noisy") as run:
        _spread_webhooks(run, ctx, prefix="A", mode="slow")
        neighbour = Api(run.stack.base_url, _api_key(run, NEIGHBOUR))
        fast_paths = [f"/fast/n{i}" for i in range(ctx.sizes.webhooks)]
        neighbour.create_webhooks(
            [
                {"url": run.sink.url(path), "tracking_id": f"N{i}"}
                for i, path in enumerate(fast_paths)
            ],
            threads=4,
            deadline=deadline,
        )
        # A's backlog: one published event's deliveries, copied N times in
        # SQL, all due already (waiting since before B's first event).
        seed = run.publisher.publish(payloads.event(seq=0, resource_id="A0"))
        run.wait_received(1, deadline=deadline, mode="slow", answered=True)
        hooks = _subscription_ids(ctx, tracking_prefix="A")
        _insert_backlog(
            ctx,
            rows=sizes.noisy_backlog,
            event_id=seed.event_id,
            subscription_ids=hooks,
            values={
                "attempts_count": "0",
                "backoff_step": "0",
                "next_attempt_at": (
                    "now() - interval '10 minutes' + g * interval '1 millisecond'"
                ),
                "last_status_code": "NULL",
                "last_error": "''",
            },
        )
        time.sleep(sizes.noisy_window)  # A ramps up
        before = time.time()
        time.sleep(sizes.noisy_window)
        publisher = Api(run.stack.base_url, ctx.publisher_key, batch=1)
        published = []
        started = time.time()
        for n in range(sizes.noisy_events):
            # A steady pace: each event meets A's backlog as it is then.
            time.sleep(max(0.0, started + n / NOISY_RATE - time.time()))
            event = payloads.event(seq=n, resource_id=f"N{n % len(fast_paths)}")
            published.append(
                publisher.publish(
                    event, index=n, paths=(fast_paths[n % len(fast_paths)],)
                )
            )
        run.wait_received(sizes.noisy_events, deadline=deadline)
        during = (started, time.time())
        time.sleep(sizes.noisy_window)
        after = time.time()
        receipts = run.sink.receipts()
        left = _still_due(ctx)
    delivered = analyse(
        published, receipts, keep=lambda path: path.startswith("/fast/n")
    )
    slow_done = sorted(r.done for r in receipts if r.path.startswith("/slow/"))
    alone = _rate(slow_done, before, started) + _rate(slow_done, during[1], after)
    figures = {
        "noisy.b_p50_ms": percentile(delivered.latencies_ms, 50),
        "noisy.b_p99_ms": percentile(delivered.latencies_ms, 99),
        "noisy.b_max_ms": max(delivered.latencies_ms, default=None),
        "noisy.a_alone": alone / 2,
        "noisy.a_with_b": _rate(slow_done, *during),
    }
    return Outcome(
        figures=figures,
        checks=delivered.checks(),
        details={
            "a_backlog": sizes.noisy_backlog,
            "a_still_due_at_end": left,
            "b_rate_per_s": NOISY_RATE,
            "windows": {
                "before": [before, started],
                "during": list(during),
                "after": [during[1], after],
            },
        },
    )


# B publishes this many events per second (200 events: 10 s).
NOISY_RATE = 20.0


def _rate(done: list[float], start: float, end: float) -> float:
    """Completions per second in [start, end)."""
    count = sum(1 for at in done if start <= at < end)
    return count / (end - start) if end > start else 0.0


def _api_key(run: Running, client: str) -> str:
    """A subscriptions key for another tenant, made in the scenario's database."""
    out = manage(
        ["create_api_key", "--client", client, "--scope", "subscriptions"],
        env=run.stack.env,
        log=run.stack.log("keys"),
    )
    return out.strip().splitlines()[-1].strip()


def _subscription_ids(ctx: Context, *, tracking_prefix: str) -> list[str]:
    connection = ctx.database.connect()
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(
                "SELECT id::text FROM subscriptions_subscription "
                "WHERE tracking_id LIKE %s ORDER BY tracking_id",
                [tracking_prefix + "%"],
            )
            return [row[0] for row in cursor.fetchall()]
    finally:
        connection.close()


def _still_due(ctx: Context) -> int:
    """Pending deliveries left (A's backlog must not have drained already)."""
    connection = ctx.database.connect()
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM delivery_delivery WHERE status = 'pending'"
            )
            return cursor.fetchone()[0]
    finally:
        connection.close()


# Every column of a delivery row the bench fills in; the values are SQL.
_BACKLOG_VALUES = {
    "id": "gen_random_uuid()",
    "event_id": "%(event)s",
    # The subscriptions take turns; they all belong to one client.
    "subscription_id": "(%(subscriptions)s::uuid[])[1 + mod(g, %(spread)s)]",
    "client_id": (
        "(SELECT client_id FROM subscriptions_subscription "
        "WHERE id = (%(subscriptions)s::uuid[])[1])"
    ),
    "kind": "'event'",
    "status": "'pending'",
    "attempts_count": "3",
    "backoff_step": "3",
    # Retries due between 2 and ~7.5 hours from now, 20 ms apart.
    "next_attempt_at": "now() + interval '2 hours' + g * interval '20 milliseconds'",
    "lease_token": "NULL",
    "expires_at": "now() + interval '24 hours'",
    "created_at": "now()",
    "updated_at": "now()",
    "delivered_at": "NULL",
    "last_status_code": "503",
    "last_error": "'bench backlog: 503 Service Unavailable'",
}


def _insert_backlog(
    ctx: Context,
    *,
    rows: int,
    event_id: str,
    subscription_ids: list[str],
    values: dict[str, str] | None = None,
) -> None:
    """INSERT ... SELECT generate_series: rows pending deliveries, hours ahead
    unless `values` (column -> SQL, `g` the row number) says otherwise.

    The columns come from the live table, so a new nullable or defaulted
    column does not break the bench; a new required one fails clearly.
    """
    connection = ctx.database.connect()
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(
                "SELECT column_name, is_nullable = 'YES' OR column_default IS NOT NULL "
                "FROM information_schema.columns WHERE table_name = 'delivery_delivery'"
            )
            columns = cursor.fetchall()
            unknown = [
                name
                for name, optional in columns
                if name not in _BACKLOG_VALUES and not optional
            ]
            if unknown:
                raise RuntimeError(f"backlog: no value for delivery columns {unknown}")
            chosen = {**_BACKLOG_VALUES, **(values or {})}
            names = [name for name, _ in columns if name in chosen]
            # Set-up, not measured: skip the per-row foreign-key triggers (the
            # ids were just read from the database) so a million rows take
            # seconds. Needs a superuser, which the bench's postgres user is.
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute(
                f"INSERT INTO delivery_delivery ({', '.join(names)}) "
                f"SELECT {', '.join(chosen[name] for name in names)} "
                "FROM generate_series(1, %(rows)s) AS g",
                {
                    "event": event_id,
                    "subscriptions": subscription_ids,
                    "spread": len(subscription_ids),
                    "rows": rows,
                },
            )
        connection.autocommit = True
        with connection.cursor() as cursor:
            # What autovacuum would have done by the time a real backlog built up.
            cursor.execute("ANALYZE delivery_delivery")
    finally:
        connection.close()


SCENARIOS = {
    "burst": burst,
    "single": single,
    "inprocess": inprocess,
    "drain": drain,
    "idle": idle,
    "slow": slow,
    "fanout": fanout,
    "dead": dead,
    "backlog": backlog,
    "noisy": noisy,
}
