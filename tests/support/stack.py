"""Real service processes for integration tests: Celery workers and beat as
subprocesses (the Procfile's commands), against the pytest-django test
database and a Redis database, with settings overridden through the
environment exactly as a deployment would set them.

    stack = Stack(database_url=..., redis_url=..., env=ACCELERATED)
    worker = stack.start_worker()
    stack.start_beat()
    ...
    worker.kill()        # SIGKILL, as an OOM kill or a lost host would
    stack.stop()         # everything still running, bounded

Each process runs in its own process group so that stopping it also stops
anything it started.
"""

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings as django_settings
from django.db import connection

from tests.support.paths import ROOT
from tests.support.waiting import wait_until
from webhooks_project import conf

CELERY = str(Path(sys.executable).with_name("celery"))
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))

# A schedule fast enough for tests, set through the same variables as production.
ACCELERATED: dict[str, str] = {
    "WEBHOOK_RETRY_SCHEDULE": "100ms,200ms,400ms",
    "WEBHOOK_RETRY_JITTER": "10%",
    "WEBHOOK_DELIVERY_TTL": "5s",
    "WEBHOOK_DISPATCH_INTERVAL": "100ms",
    "WEBHOOK_EXPIRE_INTERVAL": "200ms",
    "WEBHOOK_CONFLICT_RETRY_INTERVAL": "150ms",
    "WEBHOOK_RETRY_AFTER_MAX": "1s",
    "WEBHOOK_CONNECT_TIMEOUT": "500ms",
    "WEBHOOK_TIMEOUT": "1s",
    "WEBHOOK_CLAIM_LEASE": "3s",
    "WEBHOOK_COUNTDOWN_MAX": "1m",
    # Off unless a test is about them: every test receiver is one destination.
    "WEBHOOK_PAUSE_AFTER_FAILURES": "1000",
    "WEBHOOK_BREAKER_THRESHOLD": "1000",
    "WEBHOOK_ALLOW_PRIVATE_DESTINATIONS": "true",
}


def parse_like_settings(name: str, raw: str) -> object:
    """Parse an env override the way settings.py parses that variable."""
    current = getattr(django_settings, name)
    if isinstance(current, bool):
        return conf.parse_bool(raw)
    if isinstance(current, timedelta):
        return conf.parse_duration(raw)
    if isinstance(current, tuple):
        return conf.parse_schedule(raw)
    if isinstance(current, float):
        return conf.parse_fraction(raw)
    if isinstance(current, int):
        return conf.parse_positive_int(raw)
    return raw


def database_url() -> str:
    """The pytest-django test database, as a URL for processes outside this
    one (they see the rows a transactional test commits)."""
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return (
        f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )


def redis_url() -> str:
    return os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


class ServiceProcess:
    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path):
        self.name = name
        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 30.0) -> None:
        def seen() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited early:\n{self.log()[-3000:]}")
            return text in self.log()

        wait_until(seen, timeout=timeout, interval=0.05, message=f"{self.name}: {text}")

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown, no acks."""
        self._signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 2.0) -> None:
        """SIGTERM, and SIGKILL after `timeout` (tests need no graceful drain:
        the rows are the truth)."""
        if self.process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.process.wait(timeout=10)
        else:
            self._signal(signal.SIGKILL)  # stragglers of the group, if any
        self._log.close()

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass


class Stack:
    """Starts workers and beat; stop() ends every process it started."""

    def __init__(
        self,
        *,
        database_url: str,
        redis_url: str,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.database_url = database_url
        self.redis_url = redis_url
        self.overrides = dict(ACCELERATED if env is None else env)
        self.processes: list[ServiceProcess] = []
        self._dir = Path(tempfile.mkdtemp(prefix="webhooks-stack-"))

    def environ(self, **extra: str) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("WEBHOOK_", "CELERY_", "PYTEST_"))
        }
        env.update(
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            WEBHOOK_VAR_DIR=str(self._dir),
            DJANGO_SETTINGS_MODULE="webhooks_project.settings",
            # Production mode needs keys (tests/settings.py); the same ones as
            # this process, so each side decrypts what the other encrypted.
            WEBHOOK_ENCRYPTION_KEYS=",".join(django_settings.WEBHOOK_ENCRYPTION_KEYS),
            PYTHONUNBUFFERED="1",
            LOG_LEVEL="INFO",
        )
        env.update(self.overrides)
        env.update(extra)
        return env

    def start_worker(
        self, *, concurrency: int = 4, name: str | None = None, **env: str
    ) -> ServiceProcess:
        """The Procfile's worker (thread pool), ready to consume when returned."""
        name = name or f"w{len(self.processes)}"
        args = [
            CELERY,
            "-A",
            "webhooks_project",
            "worker",
            "--pool",
            "threads",
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "INFO",
            "--without-mingle",
            "--without-gossip",
            "--hostname",
            f"{name}-{os.getpid()}@%h",
        ]
        process = self._start(name, args, env)
        process.wait_for_log(" ready.")
        return process

    def start_beat(self, *, name: str | None = None, **env: str) -> ServiceProcess:
        """The Procfile's beat, with its schedule file in a temporary directory
        (the same `name` again reuses the schedule file, as a restart would)."""
        name = name or f"beat{len(self.processes)}"
        args = [
            CELERY,
            "-A",
            "webhooks_project",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(self._dir / f"{name}-schedule"),
            "--pidfile",
            str(self._dir / f"{name}.pid"),
        ]
        process = self._start(name, args, env)
        process.wait_for_log("beat: Starting...")
        return process

    def start_web(
        self,
        *,
        port: int,
        host: str = "127.0.0.1",
        workers: int = 1,
        threads: int = 4,
        **env: str,
    ) -> ServiceProcess:
        """The Procfile's web (gunicorn) on `host`:`port`, booted when returned
        (poll it over HTTP before relying on it: the app loads lazily)."""
        name = f"web{len(self.processes)}"
        args = [
            GUNICORN,
            "webhooks_project.wsgi",
            "--config",
            "python:webhooks_project.gunicorn_conf",
            "--bind",
            f"{host}:{port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--timeout",
            "30",
        ]
        process = self._start(name, args, env)
        process.wait_for_log("Booting worker")
        return process

    def run_python(self, code: str, *, timeout: float = 30.0, **env: str) -> str:
        """Run a Django snippet in a fresh process (e.g. with another broker);
        returns its stdout, raising with its output if it fails."""
        prelude = "import django; django.setup()\n"
        done = subprocess.run(
            [sys.executable, "-c", prelude + code],
            cwd=ROOT,
            env=self.environ(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise AssertionError(f"snippet failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()

    def logs(self) -> str:
        return "\n".join(
            f"===== {p.name} =====\n{p.log()[-4000:]}" for p in self.processes
        )

    def _start(self, name: str, args: list[str], env: dict[str, Any]) -> ServiceProcess:
        process = ServiceProcess(
            name, args, self.environ(**env), self._dir / f"{name}.log"
        )
        self.processes.append(process)
        return process
