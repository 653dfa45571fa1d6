"""python -m bench [--quick] [--runs N] [--only SCENARIO ...] [--json PATH]

Starts the real stack from the Procfile (gunicorn web, Celery worker, beat)
on PostgreSQL (database wh_bench, dropped and recreated) and Redis (db 5,
flushed), a local sink, and runs the scenarios of issues 5 and 19. Prints one
table and writes JSON (bench/results/latest.json unless --json says otherwise); a
full run (not --quick, not --only) also rewrites bench/RESULTS.md.

Exit status: 0 when every scenario ran to the end and every published event
was received, 1 otherwise, 2 when the bench could not start, 130 on Ctrl-C.
Targets missed do not change the exit status: the table says pass or miss.
"""

import argparse
import dataclasses
import os
import platform
import shlex
import signal
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench import ceilings, procs, report
from bench.context import (
    FULL,
    PUBLISHER,
    QUICK,
    SUBSCRIBER,
    Context,
    prepare_database,
)
from bench.scenarios import SCENARIOS
from bench.sink_client import Sink
from bench.stack import (
    DEFAULT_DATABASE_URL,
    DEFAULT_REDIS_URL,
    ROOT,
    Database,
)

RESULTS = ROOT / "bench" / "results"
ALIASES = {"memory": "burst"}  # scenario 7 is measured during scenario 1


class BenchTimeout(BaseException):
    """The overall time limit ran out (raised from SIGALRM)."""


def _on_alarm(signum, frame):
    raise BenchTimeout


def _on_term(signum, frame):
    raise KeyboardInterrupt


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 run, small N, same code paths (< 2 minutes)",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs to take medians of")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="SCENARIO",
        choices=sorted([*SCENARIOS, *ALIASES]),
        help="run only these scenarios",
    )
    parser.add_argument("--json", type=Path, help="where to write the JSON results")
    parser.add_argument(
        "--publishers",
        type=int,
        default=12,
        help="publishing threads, each with its own pooled session",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="worker processes (copies of the Procfile's worker line; one per core)",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=100,
        help="events per publish request: POST /batch/api/v1/events with up to "
        "this many (1: one POST /api/v1/events per event)",
    )
    parser.add_argument(
        "--single-events",
        type=int,
        help="events of the single scenario (default 20,000; --quick 300)",
    )
    parser.add_argument(
        "--dead-timeout",
        default="2s",
        help="WEBHOOK_TIMEOUT for the dead-endpoint scenario",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for every stack process (repeatable)",
    )
    parser.add_argument("--timeout", type=float, help="overall time limit, seconds")
    return parser.parse_args(argv)


def _scenario_names(only: list[str] | None) -> list[str]:
    if not only:
        return list(SCENARIOS)
    wanted = {ALIASES.get(name, name) for name in only}
    return [name for name in SCENARIOS if name in wanted]


def _run_scenario(name: str, ctx: Context, args: argparse.Namespace) -> dict:
    started = time.monotonic()
    print(f"  {name} …", end="", flush=True)
    try:
        kwargs = {"timeout": args.dead_timeout} if name == "dead" else {}
        outcome = SCENARIOS[name](ctx, **kwargs)
    except Exception as exc:  # one broken scenario must not stop the others
        seconds = time.monotonic() - started
        print(f" error after {seconds:.0f} s: {exc}", flush=True)
        return {
            "status": "error",
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
            "figures": {},
            "seconds": seconds,
        }
    seconds = time.monotonic() - started
    checks = outcome.checks
    status = "ok"
    if checks is not None and (checks["missing"] or checks["expected"] == 0):
        status = "incomplete"
    summary = f"{checks['received']}/{checks['expected']} received" if checks else ""
    print(f" {status} in {seconds:.0f} s {summary}", flush=True)
    return {
        "status": status,
        "figures": outcome.figures,
        "checks": checks,
        "details": {**outcome.details, "stack": dict(ctx.timings)},
        "seconds": seconds,
    }


def _notes(args: argparse.Namespace, sizes) -> list[str]:
    return [
        "Stack: the Procfile's web (bound to 127.0.0.1), worker "
        f"(×{args.workers}) and beat lines run by bash with PORT, "
        "DATABASE_URL (wh_bench), REDIS_URL (db 5), the SSRF guard on with "
        "WEBHOOK_SSRF_ALLOWLIST naming exactly the sink's two ports, "
        "LOG_LEVEL=WARNING, a high WEBHOOK_THROTTLE_RATE; every scenario on a "
        "fresh clone of a migrated database."
        + (f" Extra env: {' '.join(args.env)}." if args.env else ""),
        f"Publishing: {args.publishers} threads in the bench process, each with its "
        "own pooled requests.Session, "
        + (
            f"POST /batch/api/v1/events with {args.batch} events per request"
            if args.batch > 1
            else "POST /api/v1/events, one event per request"
        )
        + f" (public events, each matching one of {sizes.webhooks} trackingId "
        "webhooks; fan-out and idle: one event per POST /api/v1/events). Latency "
        "runs from just before the POST to the sink's receipt.",
        "1c single: one event per POST /api/v1/events from 16 threads whatever "
        "--publishers and --batch say; alone before it and after it, the "
        "publish ceiling (bench/ceiling: a Django view that parses the body and "
        "INSERTs it in one transaction, on the Procfile's web line, the same 16 "
        "publishers; the mean of its two sustained 202 rates); then "
        "django-webhook 0.0.15 from PyPI in the bench's "
        "own virtualenv (bench/peers.py, bench/peer: a model saved per POST, "
        "its Celery worker on the Procfile's worker line, the same sink).",
        "1d in-process: python -m bench.inprocess with the stack's environment "
        "calls events.services.publish_event in a loop (the 1c events), each "
        "committed with its delivery before the next, in one thread and then "
        "in 4 threads of one process, while the stack's workers deliver; the "
        "rate is events over the loop's wall time.",
        "Sustained: deliveries/s between the 10th and 90th percentile completion "
        "(ramp-up and tail left out). 1b drain: the events are published with the "
        "worker stopped, then it starts: the delivery path without publishing load.",
        "Sink: asyncio HTTP/1.1 keep-alive server in its own process (bench/sink.py); "
        "dead endpoints: a closed port and a second sink port that never answers, "
        f"WEBHOOK_TIMEOUT={args.dead_timeout}.",
        "Backlog: rows inserted with INSERT … SELECT generate_series, due 2–7.5 h "
        "ahead, then ANALYZE; CPU from /proc/<pid>/stat over "
        f"{sizes.idle_cpu_seconds:.0f} s; dispatch_due timed in-process "
        "(bench/probe.py), median of 5 passes.",
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.single_events:
        sizes = dataclasses.replace(sizes, single_events=args.single_events)
    runs = 1 if args.quick else max(1, args.runs)
    names = _scenario_names(args.only)
    env_extra = dict(item.split("=", 1) for item in args.env)
    stamp = datetime.now(UTC)
    log_dir = RESULTS / "logs" / stamp.strftime("%Y%m%dT%H%M%S")
    log_dir.mkdir(parents=True, exist_ok=True)
    json_path = args.json or RESULTS / "latest.json"
    command = "python -m bench" + "".join(
        f" {shlex.quote(arg)}" for arg in (argv if argv is not None else sys.argv[1:])
    )
    meta = {
        "command": command,
        "date": stamp.strftime("%Y-%m-%d %H:%M UTC"),
        "quick": args.quick,
        "runs": runs,
        "scenarios": names,
        "cores": os.cpu_count(),
        "commit": procs.commit(),
        "python": platform.python_version(),
        "load_average_start": procs.load_average(),
        "logs": str(log_dir),
    }
    result: dict = {"meta": meta, "runs": [], "notes": _notes(args, sizes)}
    exit_code = 0
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGTERM, _on_term)
    signal.alarm(int(args.timeout or sizes.overall_timeout))
    sink = None
    print(
        f"bench: {'quick' if args.quick else 'full'}, {runs} run(s), scenarios "
        f"{', '.join(names)}; load average {meta['load_average_start']:.2f}; "
        f"logs in {log_dir}",
        flush=True,
    )
    if meta["load_average_start"] > 1.0:
        print(
            "  warning: the machine is busy; figures will be lower and noisier",
            flush=True,
        )
    try:
        database = Database(os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
        redis_url = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL)
        print("  database: migrating the template, creating API keys", flush=True)
        _, keys = prepare_database(
            database, redis_url=redis_url, log_dir=log_dir, env_extra=env_extra
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
            env_extra=env_extra,
        )
        for number in range(1, runs + 1):
            ctx.log_dir = log_dir / f"run{number}"
            ctx.log_dir.mkdir(parents=True, exist_ok=True)
            run = {"run": number, "figures": {}, "scenarios": {}}
            result["runs"].append(run)
            sink_ceiling = ceilings.sink_ceiling(
                sink, seconds=sizes.ceiling_seconds, log=ctx.log_dir / "wrk.log"
            )
            bare = ceilings.bare_ceiling(
                sink, seconds=sizes.ceiling_seconds, log=ctx.log_dir / "bare.log"
            )
            publisher = ceilings.publisher_ceiling(
                sink, threads=args.publishers, seconds=sizes.ceiling_seconds
            )
            sink.reset()
            run["figures"]["ceiling.publisher"] = publisher["rate"]
            run["figures"]["ceiling.sink"] = sink_ceiling["rate"]
            run["figures"]["ceiling.bare"] = bare["rate"]
            run["ceilings"] = {
                "sink": sink_ceiling,
                "bare": bare,
                "publisher": publisher,
            }
            print(
                f"run {number}: sink ceiling {sink_ceiling['rate']:,.0f} req/s "
                f"({sink_ceiling['tool']}), bare ceiling {bare['rate']:,.0f} POST/s",
                flush=True,
            )
            for name in names:
                outcome = _run_scenario(name, ctx, args)
                run["scenarios"][name] = outcome
                run["figures"].update(outcome["figures"])
                if outcome["status"] != "ok":
                    exit_code = 1
    except BenchTimeout:
        print(
            "\nbench: the overall time limit ran out; reporting what was measured",
            flush=True,
        )
        result["aborted"] = "timeout"
        exit_code = 1
    except KeyboardInterrupt:
        print("\nbench: interrupted; stopping everything", flush=True)
        result["aborted"] = "interrupted"
        exit_code = 130
    except Exception as exc:
        print(f"\nbench: could not run: {type(exc).__name__}: {exc}", flush=True)
        result["aborted"] = f"{type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc()
        exit_code = 2
    finally:
        signal.alarm(0)
        if sink is not None:
            sink.stop()
        procs.kill_all()
    meta["load_average_end"] = procs.load_average()
    result["complete"] = exit_code == 0
    result["table"] = report.summarise(result["runs"], sizes)
    print()
    print("\n".join(report.table_lines(result["table"], markdown=False)))
    print()
    print("\n".join(report.checks_lines(result["runs"], markdown=False)))
    if args.quick:
        print("\n(quick: small N, one run; the targets are for the full run)")
    report.write_json(json_path, result)
    print(f"\nJSON: {json_path}")
    if not args.quick and not args.only and result["runs"]:
        report.write_markdown(ROOT / "bench" / "RESULTS.md", result)
        print(f"table: {ROOT / 'bench' / 'RESULTS.md'}")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
