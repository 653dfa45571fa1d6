import subprocess
import sys

from bench import procs

# A parent that runs a child burning about 0.3 s of CPU, waits for it, then
# sleeps: the child's time is gone from /proc but the parent's counts it.
PARENT = (
    "import subprocess, sys, time; "
    "subprocess.run([sys.executable, '-c', "
    "'import time\\nend = time.process_time() + 0.3\\n"
    "while time.process_time() < end: pass']); "
    "print('done', flush=True); time.sleep(30)"
)

# Burns about 0.5 s of CPU, says so, then sleeps (still readable in /proc).
BURN_THEN_SLEEP = (
    "import time\nend = time.process_time() + 0.5\n"
    "while time.process_time() < end: pass\n"
    "print('done', flush=True)\ntime.sleep(30)"
)


def test_cpu_seconds_counts_the_time_of_children_that_have_ended():
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout.readline().strip() == "done"

        assert procs.cpu_seconds([parent.pid]) >= 0.25
    finally:
        parent.kill()
        parent.wait()


def test_cpu_seconds_of_processes_gone_is_nothing():
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()

    assert procs.cpu_seconds([gone.pid]) == 0.0


def test_cpu_shares_divide_each_groups_cpu_by_the_events():
    busy = subprocess.Popen(
        [sys.executable, "-c", BURN_THEN_SLEEP],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        shares = procs.CpuShares({"busy": lambda: [busy.pid], "none": lambda: []})
        assert busy.stdout.readline() == "done\n"
        per_event = shares.per_event(100)
    finally:
        busy.kill()
        busy.wait()
    # ~0.5 s of CPU over 100 events: ~5 ms each (less what ran before the
    # first reading: the interpreter's start-up overlaps it).
    assert 3 <= per_event["busy"] <= 7, per_event
    assert per_event["none"] == 0
    assert per_event["cores"] > 0
    assert procs.CpuShares.describe({"web": 1.094, "cores": 1.5}) == (
        "web 1.09, cores 1.50"
    )
