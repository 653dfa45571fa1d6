"""Smoke test of the benchmark harness: `python -m bench --quick` must run every
scenario end to end on the real stack, so the bench cannot rot.

It uses the bench's own database (wh_bench) and Redis db (5), never the test
database, and asserts completion and delivery, not speed: figures belong to
`make bench`, not to a timed test.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.support.paths import ROOT

SCENARIOS = {
    "burst",
    "single",
    "inprocess",
    "drain",
    "idle",
    "slow",
    "fanout",
    "dead",
    "backlog",
    "noisy",
}


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_quick_bench_runs_every_scenario_and_every_published_event_arrives(tmp_path):
    out = tmp_path / "quick.json"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL")
    }
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        # The first run also makes django-webhook's virtualenv (pip, PyPI).
        timeout=560,
    )
    assert completed.returncode == 0, (
        completed.stdout[-3000:] + completed.stderr[-3000:]
    )
    result = json.loads(out.read_text())
    assert result["complete"] is True
    (run,) = result["runs"]
    assert set(run["scenarios"]) == SCENARIOS
    for name, scenario in run["scenarios"].items():
        assert scenario["status"] == "ok", (name, scenario.get("error"))
        checks = scenario["checks"]
        if checks is not None:
            assert checks["expected"] > 0, name
            assert checks["received"] == checks["expected"], (name, checks)
    figures = run["figures"]
    assert figures["ceiling.bare"] > 0
    assert figures["backlog.sent_early"] == 0
    assert figures["fanout.accept_ms"] > 0
    # Single-event publishing is compared with the publish ceiling and the
    # peer measured in the same run; the ceiling is taken before and after
    # 1c, and the figure is their mean.
    ceilings = run["scenarios"]["single"]["details"]["ceiling"]
    before, after = ceilings["before"]["rate"], ceilings["after"]["rate"]
    assert before > 0 and after > 0
    assert figures["single.ceiling"] == pytest.approx((before + after) / 2)
    # Each ceiling's CPU per publish, beside 1c's per event; PostgreSQL's
    # parted by the process types the Procfile names their connections after.
    for ceiling in ceilings.values():
        cpu = ceiling["cpu_ms_per_request"]
        assert cpu["web"] > 0 and cpu["postgres (web)"] > 0, cpu
        assert cpu["bench (publishers)"] > 0, cpu
    cpu = run["scenarios"]["single"]["details"]["cpu_ms_per_event"]
    assert cpu["postgres (web)"] > 0 and cpu["postgres (worker)"] > 0, cpu
    assert figures["single.peer"] > 0, run["scenarios"]["single"].get("details")
    # In-process publishing, one thread and several.
    assert figures["inprocess.rate"] > 0 and figures["inprocess_t.rate"] > 0
    # Noisy neighbour: B's latency and A's throughput in both windows.
    assert figures["noisy.b_p99_ms"] > 0
    assert figures["noisy.a_alone"] > 0 and figures["noisy.a_with_b"] is not None
    table = {row["key"]: row for row in result["table"]}
    assert table["burst.sustained"]["value"] is not None
