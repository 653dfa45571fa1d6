"""Start the sink (bench/sink.py) in its own process and talk to it."""

import select
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from bench import procs
from bench.stack import ROOT


@dataclass(frozen=True)
class Receipt:
    path: str
    webhook_id: str
    received: float
    answered: float | None

    @property
    def done(self) -> float:
        """When the delivery finished from the sender's side (answer sent)."""
        return self.answered if self.answered is not None else self.received


class Sink:
    def __init__(self, *, log: Path, slow_seconds: float = 1.0) -> None:
        self.process = procs.spawn(
            [sys.executable, "-m", "bench.sink", "--slow-seconds", str(slow_seconds)],
            env={"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1"},
            cwd=ROOT,
            log=log,
            capture_stdout=True,
        )
        line = self._read_line(timeout=15)
        if not line.startswith("READY"):
            self.stop()
            raise RuntimeError(f"the sink did not start: {line!r}; see {log}")
        ports = dict(part.split("=") for part in line.split()[1:])
        self.main_port = int(ports["main"])
        self.aux_port = int(ports["aux"])
        self.session = requests.Session()
        self.session.trust_env = False

    def _read_line(self, *, timeout: float) -> str:
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            return "(nothing within the start-up time)"
        return self.process.stdout.readline().decode().strip()

    def allowlist(self) -> str:
        """WEBHOOK_SSRF_ALLOWLIST for exactly the sink's two ports."""
        return f"127.0.0.1:{self.main_port},127.0.0.1:{self.aux_port}"

    def url(self, path: str, *, aux: bool = False) -> str:
        port = self.aux_port if aux else self.main_port
        return f"http://127.0.0.1:{port}{path}"

    def stats(self) -> dict:
        return self.session.get(self.url("/__stats"), timeout=10).json()

    def count(self, mode: str = "") -> int:
        stats = self.stats()
        return stats["counts"].get(mode, 0) if mode else stats["total"]

    def answered(self, mode: str) -> int:
        return self.stats()["answered"].get(mode, 0)

    def receipts(self) -> list[Receipt]:
        rows = self.session.get(self.url("/__receipts?since=0"), timeout=60).json()
        return [Receipt(*row) for row in rows["rows"]]

    def reset(self) -> None:
        self.session.post(self.url("/__reset"), timeout=10).raise_for_status()

    def wait_until(
        self, reached, *, deadline: float, interval: float = 0.02, alive=None
    ) -> bool:
        """Poll /__stats until reached(stats) or the deadline; True if reached.

        `alive` (optional) is called about once a second and raises if the
        service died, so a crashed worker fails fast instead of at the deadline.
        """
        checked = time.monotonic()
        while True:
            if reached(self.stats()):
                return True
            now = time.monotonic()
            if now >= deadline:
                return False
            if alive is not None and now - checked >= 1.0:
                alive()
                checked = now
            time.sleep(interval)

    def stop(self) -> None:
        procs.stop(self.process, grace=2)
