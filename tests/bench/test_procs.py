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
