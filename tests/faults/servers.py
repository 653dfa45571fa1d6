"""Private PostgreSQL and Redis servers for the fault tests, on free ports.

The fault tests stop, restart and flush them, so they are never the machine's
own servers (5432, 6379). PostgreSQL refuses to run as root: its binaries run
as the `postgres` user, in a data directory that user owns.
"""

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg2
import redis

from tests.support.ports import free_port
from tests.support.waiting import wait_until

# runuser lives in /usr/sbin, which a minimal PATH may leave out.
_RUNUSER = shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin")
RUN_AS: list[str] = (
    [_RUNUSER or "runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
)


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"no PostgreSQL {name} under /usr/lib/postgresql/*/bin")
    return found[-1]


class PrivatePostgres:
    """initdb + pg_ctl in a temporary directory; stop(), start(), restart().
    `settings` (name: value) go on the server's command line."""

    def __init__(self, settings: dict[str, str] | None = None) -> None:
        self.settings = settings or {}
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="faults-pg-"))
        self.data = self.dir / "data"
        if RUN_AS:
            shutil.chown(self.dir, user="postgres", group="postgres")
        self._run(
            _pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"
        )
        self.start()

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres") -> "psycopg2.extensions.connection":
        connection = psycopg2.connect(self.url(database), connect_timeout=3)
        connection.autocommit = True
        return connection

    def start(self) -> None:
        self._pg_ctl(*self._server_options(), "-w", "start")

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "-w", "stop")

    def restart(self) -> None:
        """A fast restart: every open connection is cut."""
        self._pg_ctl(*self._server_options(), "-m", "fast", "-w", "restart")

    def _server_options(self) -> list[str]:
        # -l: the server must not inherit pg_ctl's output pipe, or pg_ctl's
        # caller would wait for it to close.
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off -c max_connections=200"
        ) + "".join(f" -c {name}={value}" for name, value in self.settings.items())
        return ["-o", options, "-l", str(self.dir / "server.log")]

    def close(self) -> None:
        try:
            self._pg_ctl("-m", "immediate", "-w", "stop")
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.dir, ignore_errors=True)

    def _pg_ctl(self, *args: str) -> None:
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), *args)

    def _run(self, *args: str) -> None:
        subprocess.run(
            [*RUN_AS, *args],
            check=True,
            capture_output=True,
            timeout=60,
            cwd=self.dir,
        )


class PrivateRedis:
    """A redis-server subprocess without persistence, listening on `host`;
    stop(), start(), flush()."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def url(self, db: int = 0) -> str:
        return f"redis://{self.host}:{self.port}/{db}"

    def client(self) -> redis.Redis:
        return redis.Redis(
            host=self.host, port=self.port, socket_connect_timeout=2, socket_timeout=5
        )

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                self.host,
                "--save",
                "",
                "--appendonly",
                "no",
                # no password: clients on a test network (tests/multihost)
                # would be refused otherwise
                "--protected-mode",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._answers, timeout=10, message="the private redis-server")

    def stop(self) -> None:
        """SIGTERM and wait: clients see refused connections until start()."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def flush(self) -> None:
        """FLUSHALL: every queued wake-up (and kombu's bindings) is gone."""
        self.client().flushall()

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def _answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            time.sleep(0.02)
            return False
