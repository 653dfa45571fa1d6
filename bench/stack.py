"""The service under test: its database, its Redis db, its Procfile processes.

The bench owns one database (`wh_bench` unless BENCH_DATABASE_URL says
otherwise; the name must start with `wh_bench`, so a typo can never drop a
real database) and one Redis db (5 unless BENCH_REDIS_URL says otherwise).
It migrates a template database once per invocation, creates the API keys in
it with `manage.py create_api_key`, then clones it for every scenario, so each
scenario starts from an empty, migrated database in well under a second.

The processes are the Procfile's `web`, `worker` and `beat` lines, run with
bash exactly as a Procfile runner would, with the environment set here.
"""

import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import redis
import requests

from bench import procs

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/wh_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/5"
DATABASE_PREFIX = "wh_bench"
# What each Procfile line names its PostgreSQL connections (PGAPPNAME).
APPLICATION_NAMES = {"web": "webhooks-web", "worker": "webhooks-worker"}


class StackError(RuntimeError):
    """The service could not be started or stopped answering."""


class Database:
    """The bench's PostgreSQL database and the template it is cloned from."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.name = parts.path.lstrip("/")
        if not re.fullmatch(DATABASE_PREFIX + r"[a-z0-9_]*", self.name):
            raise SystemExit(
                f"refusing to use database {self.name!r}: the bench drops and "
                f"recreates its database, so its name must start with "
                f"{DATABASE_PREFIX!r}"
            )
        self.url = url
        self.template = f"{self.name}_template"
        self.template_url = urlunsplit(parts._replace(path=f"/{self.template}"))
        self._admin_url = urlunsplit(parts._replace(path="/postgres"))

    def _admin(self, *statements: str) -> None:
        connection = psycopg2.connect(self._admin_url, connect_timeout=5)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
        finally:
            connection.close()

    def create_template(self, *, env: dict[str, str], log: Path) -> None:
        """Drop both databases, create the template and migrate it."""
        self._admin(
            f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)',
            f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)',
            f'CREATE DATABASE "{self.template}"',
        )
        manage(
            ["migrate", "--noinput"],
            env={**env, "DATABASE_URL": self.template_url},
            log=log,
            timeout=180,
        )

    def create_empty(self) -> None:
        """Drop the database and create it empty (no migrations, no template)."""
        self._admin(
            f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)',
            f'CREATE DATABASE "{self.name}"',
        )

    def recreate(self) -> None:
        """A fresh copy of the template under the bench's name."""
        self._admin(
            f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)',
            f'CREATE DATABASE "{self.name}" TEMPLATE "{self.template}"',
        )

    def connect(self) -> "psycopg2.extensions.connection":
        return psycopg2.connect(self.url, connect_timeout=5)

    def fetch_all(self, sql: str, params: Iterable = ()) -> list[tuple]:
        """A query's rows, on a connection of its own."""
        connection = self.connect()
        try:
            with connection.cursor() as cursor:
                # No parameters: no %-interpolation (a literal % stays as is).
                cursor.execute(sql, list(params) or None)
                return cursor.fetchall()
        finally:
            connection.close()

    def fetch_one(self, sql: str) -> tuple | None:
        """The first row of a query, on a connection of its own."""
        rows = self.fetch_all(sql)
        return rows[0] if rows else None

    def backend_pids(self, *application_names: str) -> list[int]:
        """The backends now serving this database's connections of these
        application names (pg_stat_activity)."""
        rows = self.fetch_all(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = ANY(%s)",
            [list(application_names)],
        )
        return [pid for (pid,) in rows]

    def transactions(self) -> int:
        """Transactions committed or rolled back in the database so far
        (pg_stat_database; each process reports its own within a second):
        a statement in autocommit, a health check's SELECT 1 included, is
        one, and costs PostgreSQL a round trip."""
        return self.fetch_one(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database "
            "WHERE datname = current_database()"
        )[0]

    def settle(self) -> None:
        """VACUUM (ANALYZE) the database, then CHECKPOINT: what a scenario
        leaves to autovacuum and the checkpointer (20,000 rows inserted and
        40,000 updated by 1c) is done now, not inside the next measurement."""
        connection = self.connect()
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute("VACUUM (ANALYZE)")
                try:
                    cursor.execute("CHECKPOINT")
                except psycopg2.errors.InsufficientPrivilege:
                    pass  # a role without pg_checkpoint: the checkpointer's turn
        finally:
            connection.close()


def postgres_groups(
    database: Database, parts: Iterable[str] = ("web", "worker")
) -> dict[str, Callable[[], list[int]]]:
    """PostgreSQL's processes as procs.CpuShares groups: the backends serving
    each process type in `parts` (by the application name its Procfile line
    gives its connections), and the rest (other backends, the background
    processes, and backends that ended meanwhile, counted in the
    postmaster's children's time)."""
    names = {part: APPLICATION_NAMES[part] for part in parts}

    def serving(name: str) -> Callable[[], list[int]]:
        return lambda: database.backend_pids(name)

    def rest() -> list[int]:
        named = set(database.backend_pids(*names.values()))
        return [pid for pid in procs.pids_named("postgres") if pid not in named]

    groups = {f"postgres ({part})": serving(name) for part, name in names.items()}
    groups["postgres (rest)"] = rest
    return groups


def flush_redis(url: str) -> None:
    """FLUSHDB on the bench's own Redis db only."""
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        client.flushdb()
    finally:
        client.close()


def manage(
    args: list[str], *, env: dict[str, str], log: Path, timeout: float = 120
) -> str:
    """Run `manage.py <args>`; return its stdout. Raises StackError on failure."""
    process = procs.spawn(
        [sys.executable, "manage.py", *args],
        env=env,
        cwd=ROOT,
        log=log,
        capture_stdout=True,
    )
    try:
        out, _ = process.communicate(timeout=timeout)
    except Exception:
        procs.stop(process, grace=1)
        raise
    procs.forget(process)
    if process.returncode != 0:
        raise StackError(
            f"manage.py {' '.join(args)} exited {process.returncode}:\n"
            + procs.log_tail(log)
        )
    return out.decode()


def create_api_key(
    *, client: str, scopes: Iterable[str], database: Database, env: dict, log: Path
) -> str:
    """A key made with `manage.py create_api_key` in the template (last stdout line)."""
    args = ["create_api_key", "--client", client]
    for scope in scopes:
        args += ["--scope", scope]
    out = manage(args, env={**env, "DATABASE_URL": database.template_url}, log=log)
    lines = out.strip().splitlines()
    if not lines:
        raise StackError("create_api_key printed no key")
    return lines[-1].strip()


def procfile_commands(path: Path = ROOT / "Procfile") -> dict[str, str]:
    commands = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_-]+):\s*(.+)$", line.strip())
        if match:
            commands[match.group(1)] = match.group(2)
    return commands


def base_env(
    *, database_url: str, redis_url: str, var_dir: Path, extra: dict[str, str]
) -> dict[str, str]:
    """A small, reproducible environment: nothing leaks in from the caller's
    shell (its DATABASE_URL, say) except PATH, HOME and the locale."""
    env = {
        key: os.environ[key]
        for key in ("HOME", "LANG", "LC_ALL", "TZ", "USER")
        if key in os.environ
    }
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        # The SSRF guard stays on; Context.stack() allows exactly the sink's
        # address:port pairs (WEBHOOK_SSRF_ALLOWLIST), which it alone knows.
        WEBHOOK_VAR_DIR=str(var_dir),
        # The bench publishes thousands of events a second from one key.
        WEBHOOK_THROTTLE_RATE="10000000/min",
        WEBHOOK_PUBLISH_THROTTLE_RATE="10000000/min",
        # One client owns every scenario's webhooks (fan-out alone makes
        # 10,000): above the default per-tenant quota, as an operator would set.
        WEBHOOK_MAX_WEBHOOKS_PER_CLIENT="100000",
        LOG_LEVEL="WARNING",
        # Production mode, which refuses to start without its keys: fixed,
        # public values (the bench's databases are throwaway ones).
        DEBUG="false",
        SECRET_KEY="bench-only-not-a-secret-0123456789abcdef",
        WEBHOOK_ENCRYPTION_KEYS="YmVuY2gtb25seS1ub3QtYS1zZWNyZXQtMDEyMzQ1Njc=",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def migrated_template(
    database: "Database",
    *,
    redis_url: str,
    log_dir: Path,
    extra: dict[str, str],
    prefix: str = "",
) -> dict[str, str]:
    """Migrate `database`'s template with the stack's environment, which it
    returns. `prefix` names the logs and var dir of a second database in one
    log_dir."""
    env = base_env(
        database_url=database.url,
        redis_url=redis_url,
        var_dir=log_dir / f"{prefix}var",
        extra=extra,
    )
    database.create_template(env=env, log=log_dir / f"{prefix}migrate.log")
    return env


def django_here(database: "Database", *, redis_url: str, log_dir: Path) -> None:
    """For a helper that runs the service's code in its own process: a fresh
    copy of the migrated template in `database`, and this process's
    environment set as the stack's (call before django.setup())."""
    env = migrated_template(database, redis_url=redis_url, log_dir=log_dir, extra={})
    database.recreate()
    os.environ.update({k: v for k, v in env.items() if k not in ("PATH", "HOME")})
    os.environ["DJANGO_SETTINGS_MODULE"] = "webhooks_project.settings"


class Stack:
    """The Procfile's processes for one scenario; `scale` runs several copies
    of a process type (as `heroku ps:scale worker=2` would)."""

    def __init__(
        self,
        *,
        env: dict[str, str],
        log_dir: Path,
        port: int,
        scale: dict[str, int] | None = None,
        commands: dict[str, str] | None = None,
    ) -> None:
        self.env = {**env, "PORT": str(port)}
        self.log_dir = log_dir
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        # Another app on the Procfile's lines (the publish ceiling, the peer).
        self.commands = commands if commands is not None else procfile_commands()
        self.scale = scale or {}
        self.processes: dict[str, list] = {}

    def start(self, *names: str) -> None:
        for name in names:
            if name not in self.commands:
                raise StackError(f"the Procfile has no {name!r} line")
            # Listen on loopback only: the bench's traffic never leaves 127.0.0.1.
            command = self.commands[name].replace("0.0.0.0:", "127.0.0.1:")
            copies = []
            for copy in range(1, self.scale.get(name, 1) + 1):
                line = command
                if copy > 1 and " worker" in command:
                    line += f" --hostname {name}{copy}@%h"  # one node name each
                copies.append(
                    procs.spawn(
                        ["bash", "-c", line],
                        env=self.env,
                        cwd=ROOT,
                        log=self.log(name if copy == 1 else f"{name}.{copy}"),
                    )
                )
            self.processes[name] = copies

    def log(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def stop(self, *names: str) -> None:
        """Stop the named processes (all by default) at once; in-flight work is
        not waited for beyond a short grace: the database is dropped next."""
        chosen = [
            process
            for name in names or list(self.processes)
            for process in self.processes.pop(name, [])
        ]
        procs.stop(*chosen, grace=2.0)

    def pids(self, name: str) -> list[int]:
        return [
            pid
            for process in self.processes.get(name, [])
            for pid in procs.group_pids(process.pid)
        ]

    def check_alive(self) -> None:
        for name, copies in self.processes.items():
            for process in copies:
                if process.poll() is not None and not procs.group_pids(process.pid):
                    raise StackError(
                        f"{name} exited ({process.returncode}); its log "
                        f"{self.log(name)} ends with:\n"
                        f"{procs.log_tail(self.log(name))}"
                    )

    def wait_healthy(self, deadline: float, path: str = "/health") -> None:
        """Until GET `path` answers 200 (for the service: database and broker
        reachable)."""
        session = requests.Session()
        session.trust_env = False
        last = "no answer"
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                response = session.get(self.base_url + path, timeout=2)
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text[:200]}"
            except requests.RequestException as exc:
                last = type(exc).__name__
            time.sleep(0.2)
        raise StackError(f"GET {path} never answered 200 (last: {last})")
