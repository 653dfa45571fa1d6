"""The bench's output: one table (stdout and bench/RESULTS.md) and JSON.

Every figure is the median over the runs; a ratio is computed within each run
(the service against the bare ceiling of the same run) and then the median
taken, so a noisy run does not pair one run's figure with another's ceiling.
"""

import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    unit: str
    target: str = ""
    passes: Callable[[float, float | None], bool] | None = None  # (value, ratio)
    ratio_of: str | None = None  # the figure this one is divided by, per run


def figures(sizes) -> list[Figure]:
    n = f"{sizes.burst_events:,}"
    return [
        Figure(
            "ceiling.sink",
            "sink ceiling (its own; wrk, 64 connections)",
            "req/s",
            "≥ 10,000",
            lambda v, r: v >= 10_000,
        ),
        Figure("ceiling.bare", "bare ceiling: one requests.Session loop", "POST/s"),
        Figure("ceiling.publisher", "bench publisher threads → sink", "req/s"),
        Figure(
            "burst.sustained",
            f"1 burst {n} events: sustained",
            "deliveries/s",
            "≥ 1,000 and ≥ 0.8× bare",
            lambda v, r: v >= 1000 and (r or 0) >= 0.8,
            "ceiling.bare",
        ),
        Figure(
            "burst.end_to_end",
            "1 burst: first publish → last receipt",
            "deliveries/s",
            ratio_of="ceiling.bare",
        ),
        Figure("burst.publish_rate", "1 burst: publish (202s) rate", "events/s"),
        Figure("burst.p50_ms", "1 burst: publish→receipt p50", "ms"),
        Figure("burst.p99_ms", "1 burst: publish→receipt p99", "ms", "reported"),
        Figure(
            "single.sustained",
            f"1c single {sizes.single_events:,} events, one per POST, 16 "
            "publishers: sustained",
            "deliveries/s",
            "≥ 700 and ≥ 0.5× publish ceiling",
            lambda v, r: v >= 700 and (r or 0) >= 0.5,
            "single.ceiling",
        ),
        Figure("single.publish_rate", "1c single: publish (202s) rate", "events/s"),
        Figure("single.p50_ms", "1c single: publish→receipt p50", "ms"),
        Figure("single.p99_ms", "1c single: publish→receipt p99", "ms", "reported"),
        Figure(
            "single.ceiling",
            "1c publish ceiling: minimal Django view (one INSERT), same gunicorn "
            "and publishers",
            "publishes/s",
        ),
        Figure(
            "single.peer",
            f"1c django-webhook {sizes.peer_events:,} events: sustained",
            "deliveries/s",
        ),
        Figure(
            "single.peer_ratio",
            "1c single ÷ django-webhook",
            "×",
            "≥ 5",
            lambda v, r: v >= 5,
        ),
        Figure(
            "inprocess.rate",
            f"1d in-process publish_event loop, one thread, "
            f"{sizes.single_events:,} events: committed",
            "events/s",
            "≥ 2,000",
            lambda v, r: v >= 2000,
        ),
        Figure(
            "inprocess_t.rate",
            "1d in-process publish_event, 4 threads of one process: committed",
            "events/s",
        ),
        Figure("inprocess.p50_ms", "1d one thread: publish→receipt p50", "ms"),
        Figure(
            "drain.sustained",
            f"1b drain {n} due deliveries (worker started)",
            "deliveries/s",
            ratio_of="ceiling.bare",
        ),
        Figure("idle.p50_ms", f"2 idle {sizes.idle_events} events: p50", "ms"),
        Figure(
            "idle.p99_ms",
            "2 idle: publish→receipt p99",
            "ms",
            "< 50 ms",
            lambda v, r: v < 50,
        ),
        Figure(
            "slow.sustained",
            f"3 slow receivers (1 s) {sizes.slow_deliveries:,}",
            "deliveries/s",
            "≥ 150",
            lambda v, r: v >= 150,
        ),
        Figure(
            "fanout.accept_ms",
            f"4 fan-out to {sizes.fanout_subscriptions:,}: 202",
            "ms",
            "< 1,000 ms",
            lambda v, r: v < 1000,
        ),
        Figure(
            "fanout.all_received_s",
            "4 fan-out: all received",
            "s",
            "< 15 s",
            lambda v, r: v < 15,
        ),
        Figure(
            "dead.healthy_sustained",
            "5 dead endpoints 20%: healthy sustained",
            "deliveries/s",
            "≥ 0.8× burst",
            lambda v, r: (r or 0) >= 0.8,
            "burst.sustained",
        ),
        Figure(
            "backlog.cpu_pct",
            f"6 backlog {sizes.backlog_rows:,}: idle CPU workers+beat",
            "% of a core",
            "< 5%",
            lambda v, r: v < 5,
        ),
        Figure("backlog.cpu_worker_pct", "6 backlog: idle CPU workers", "% of a core"),
        Figure("backlog.cpu_beat_pct", "6 backlog: idle CPU beat", "% of a core"),
        Figure(
            "backlog.dispatch_ms",
            "6 backlog: one dispatch_due pass",
            "ms",
            "< 20 ms",
            lambda v, r: v < 20,
        ),
        Figure(
            "backlog.index_scan",
            "6 backlog: EXPLAIN shows an index scan",
            "",
            "yes",
            lambda v, r: bool(v),
        ),
        Figure(
            "noisy.b_p99_ms",
            f"8 noisy neighbour: B's {sizes.noisy_events} events (fast receivers) "
            f"while A's {sizes.noisy_backlog:,} due (slow receivers) drain: "
            "publish→receipt p99",
            "ms",
            "< 2,000 ms",
            lambda v, r: v < 2000,
        ),
        Figure("noisy.b_p50_ms", "8 noisy neighbour: B's p50", "ms"),
        Figure(
            "noisy.a_alone",
            "8 noisy neighbour: A's throughput without B (windows before and after)",
            "deliveries/s",
        ),
        Figure(
            "noisy.a_with_b",
            "8 noisy neighbour: A's throughput while B publishes",
            "deliveries/s",
            "within 10% of without",
            lambda v, r: r is not None and abs(r - 1) <= 0.1,
            "noisy.a_alone",
        ),
        Figure("memory.peak_rss_mb", "7 memory: workers' summed peak RSS", "MiB"),
        Figure(
            "memory.growth_pct",
            "7 memory: RSS first → last quarter",
            "%",
            "< 10%",
            lambda v, r: v < 10,
        ),
    ]


def _median(values: list) -> float | bool | None:
    values = [value for value in values if value is not None]
    if not values:
        return None
    if all(isinstance(value, bool) for value in values):
        return all(values)
    return statistics.median(values)


def summarise(runs: list[dict], sizes) -> list[dict]:
    """One row per figure: median value, median per-run ratio, pass/miss."""
    rows = []
    for figure in figures(sizes):
        values = [run["figures"].get(figure.key) for run in runs]
        ratios = []
        if figure.ratio_of:
            for run in runs:
                value = run["figures"].get(figure.key)
                base = run["figures"].get(figure.ratio_of)
                ratios.append(value / base if value is not None and base else None)
        value, ratio = _median(values), _median(ratios)
        if value is None:
            result = "n/a"
        elif figure.passes is None:
            result = ""
        else:
            result = "pass" if figure.passes(value, ratio) else "miss"
        rows.append(
            {
                "key": figure.key,
                "figure": figure.label,
                "value": value,
                "unit": figure.unit,
                "target": figure.target,
                "ratio": ratio,
                "ratio_of": figure.ratio_of,
                "result": result,
                "runs": [v for v in values if v is not None],
            }
        )
    return rows


def _format_value(value, unit: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if unit == "ms" or unit.startswith("%") or unit == "s":
        text = f"{value:,.1f}" if abs(value) < 100 else f"{value:,.0f}"
    else:
        text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"
    return f"{text} {unit}".strip()


def _grid(header: list[str], body: list[list[str]], *, markdown: bool) -> list[str]:
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return lines + ["| " + " | ".join(cells) + " |" for cells in body]
    widths = [max(len(c) for c in column) for column in zip(header, *body, strict=True)]
    rule = ["-" * width for width in widths]
    return [
        "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
        for cells in [header, rule, *body]
    ]


def table_lines(rows: list[dict], *, markdown: bool) -> list[str]:
    header = ["figure", "value", "target", "ratio", "result"]
    body = [
        [
            row["figure"],
            _format_value(row["value"], row["unit"]),
            row["target"],
            f"{row['ratio']:.2f}" if row["ratio"] is not None else "",
            row["result"],
        ]
        for row in rows
    ]
    return _grid(header, body, markdown=markdown)


def checks_lines(runs: list[dict], *, markdown: bool) -> list[str]:
    header = [
        "run",
        "scenario",
        "status",
        "expected",
        "received",
        "missing",
        "duplicates",
        "seconds",
    ]
    body = []
    for run in runs:
        for name, result in run["scenarios"].items():
            checks = result.get("checks") or {}
            body.append(
                [
                    str(run["run"]),
                    name,
                    result["status"],
                    *(str(checks.get(k, "")) for k in header[3:7]),
                    f"{result.get('seconds', 0):.0f}",
                ]
            )
    return _grid(header, body, markdown=markdown)


def write_json(path: Path, report: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")


def write_markdown(path: Path, report: dict) -> None:
    meta = report["meta"]
    lines = [
        "# Benchmark results",
        "",
        f"Latest full run: `{meta['command']}` on {meta['date']}"
        + (f" at commit {meta['commit']}" if meta.get("commit") else "")
        + f" ({meta['cores']} cores; load average {meta['load_average_start']:.2f} "
        f"at the start, {meta.get('load_average_end', 0):.2f} at the end; "
        f"{meta['runs']} run(s), medians). Raw figures: "
        "`bench/results/latest.json` (not committed). Regenerate with `make bench`.",
        "",
        *table_lines(report["table"], markdown=True),
        "",
        "Ratio: to the bare ceiling of the same run (burst, drain), to the publish "
        "ceiling of the same run (single) or to the burst figure of the same run "
        "(dead endpoints); medians of per-run ratios.",
        "",
        "## Delivery checks",
        "",
        *checks_lines(report["runs"], markdown=True),
        "",
    ]
    plan = _dispatch_plan(report["runs"])
    if plan:
        lines += [
            "## dispatch_due's query plan (backlog, run 1)",
            "",
            "```",
            plan,
            "```",
            "",
        ]
    if report.get("notes"):
        lines += ["## Notes", "", *(f"- {note}" for note in report["notes"]), ""]
    path.write_text("\n".join([*lines, HAND_WRITTEN, *_hand_written(path)]))


# Everything below this line in RESULTS.md is written by hand and kept as it is.
HAND_WRITTEN = "<!-- written by hand below; a full run keeps it -->"


def _hand_written(path: Path) -> list[str]:
    if not path.exists():
        return [""]
    _, marker, kept = path.read_text().partition(HAND_WRITTEN)
    # The marker's own line end is written again by the join: not kept twice.
    return kept.removeprefix("\n").split("\n") if marker else [""]


def _dispatch_plan(runs: list[dict]) -> str:
    for run in runs:
        backlog = run["scenarios"].get("backlog") or {}
        probe = (backlog.get("details") or {}).get("probe") or {}
        queries = probe.get("queries") or []
        text = "\n\n".join(
            f"{query['sql']}\n\n{query['plan']}" for query in queries if query["plan"]
        )
        if text:
            return text
    return ""
