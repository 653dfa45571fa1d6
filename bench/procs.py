"""Child processes of the bench: started in their own process groups, always ended.

Every process the bench starts goes through `spawn`, which puts it in a new
session (so its whole tree can be signalled at once) and asks the kernel to
kill it if the bench dies without cleaning up. `kill_all` ends every group
still registered; `__main__` calls it on exit, on Ctrl-C and on errors.

CPU and memory are read from /proc, summed over a process group.
"""

import atexit
import ctypes
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1
_groups: dict[int, subprocess.Popen] = {}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def _die_with_parent() -> None:
    # Runs in the child between fork and exec.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def spawn(
    args: Sequence[str],
    *,
    env: dict[str, str],
    cwd: Path,
    log: Path,
    capture_stdout: bool = False,
) -> subprocess.Popen:
    """Start args in a new process group, output appended to `log`.

    With capture_stdout, stdout is a pipe for the caller and only stderr goes
    to the log.
    """
    handle = open(log, "ab")
    try:
        process = subprocess.Popen(
            list(args),
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture_stdout else handle,
            stderr=handle if capture_stdout else subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    finally:
        handle.close()
    _groups[process.pid] = process
    return process


def stop(*processes: subprocess.Popen, grace: float = 3.0) -> None:
    """SIGTERM the process groups, SIGKILL what is left after `grace` seconds."""
    for process in processes:
        _signal_group(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(
        process.poll() is None or group_pids(process.pid) for process in processes
    ):
        time.sleep(0.05)
    for process in processes:
        _signal_group(process.pid, signal.SIGKILL)
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
        _groups.pop(process.pid, None)


def run_json(
    args: Sequence[str], *, env: dict[str, str], cwd: Path, log: Path, timeout: float
) -> dict:
    """Run a helper process that prints one JSON object last; return it."""
    process = spawn(args, env=env, cwd=cwd, log=log, capture_stdout=True)
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(process, grace=1)
        raise TimeoutError(f"{' '.join(args[:4])} did not finish in {timeout:.0f} s")
    forget(process)
    lines = out.decode(errors="replace").strip().splitlines()
    if process.returncode != 0 or not lines:
        raise RuntimeError(
            f"{' '.join(args[:4])} exited {process.returncode}; see {log}"
        )
    return json.loads(lines[-1])


def forget(process: subprocess.Popen) -> None:
    """Unregister a process that has exited by itself."""
    _groups.pop(process.pid, None)


def log_tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def kill_all() -> None:
    """SIGKILL every group still registered (exit paths; no grace)."""
    for pid, process in list(_groups.items()):
        _signal_group(pid, signal.SIGKILL)
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
        _groups.pop(pid, None)


atexit.register(kill_all)


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces.
    return text[text.rindex(")") + 2 :].split()


def group_pids(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is pgid."""
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        # fields[0] is the state, fields[2] the process group.
        if fields and fields[2] == str(pgid) and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids


def pids_named(name: str) -> list[int]:
    """Live processes whose command name (/proc/<pid>/comm) is `name`."""
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                comm = Path(f"/proc/{entry.name}/comm").read_text().strip()
            except OSError:
                continue
            if comm == name:
                pids.append(int(entry.name))
    return pids


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time of the processes and of their children that
    have ended (utime + stime + cutime + cstime): a PostgreSQL backend that
    exits between two readings is still counted, in the postmaster's."""
    ticks = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields:
            ticks += sum(int(field) for field in fields[11:15])
    return ticks / CLOCK_TICKS


class CpuShares:
    """CPU time of each group of processes (name -> a function giving its
    pids), and of this process (the bench's publishers), from now until
    per_event()."""

    def __init__(self, groups: dict[str, Callable[[], Sequence[int]]]) -> None:
        self._groups = groups
        self._before = self._sample()

    def _sample(self) -> dict[str, float]:
        sample = {name: cpu_seconds(pids()) for name, pids in self._groups.items()}
        times = os.times()
        sample["bench (publishers)"] = times.user + times.system
        sample["wall"] = time.monotonic()
        return sample

    def per_event(self, count: int) -> dict[str, float]:
        """ms of CPU per event of each part, and `cores`: their sum over the
        wall time (how much of the machine the whole run used)."""
        after = self._sample()
        wall = after.pop("wall") - self._before["wall"]
        used = {name: after[name] - self._before[name] for name in after}
        shares = {name: seconds / count * 1000 for name, seconds in used.items()}
        shares["cores"] = sum(used.values()) / wall if wall > 0 else 0.0
        return shares

    @staticmethod
    def describe(shares: dict[str, float]) -> str:
        """per_event()'s figures as one line: "web 1.09, postgres 0.31, …"."""
        return ", ".join(f"{name} {ms:.2f}" for name, ms in shares.items())


def rss_bytes(pids: Sequence[int]) -> int:
    """Sum of the processes' resident set sizes."""
    total = 0
    for pid in pids:
        try:
            resident = Path(f"/proc/{pid}/statm").read_text().split()[1]
        except (OSError, IndexError):
            continue
        total += int(resident) * PAGE_SIZE
    return total


def commit() -> str:
    """The checkout's commit (abbreviated), with "+" if it has uncommitted
    changes; "" outside a git checkout."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args],
            cwd=Path(__file__).resolve().parent.parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return ""
    return head + ("+" if dirty else "")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (connecting is refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])
