"""A private PgBouncer (Debian's `pgbouncer`) in transaction pooling mode, on
a free port, in front of a PostgreSQL server: the deployment of docs/deploy.md
("PgBouncer"), for tests that run the service through it.

    bouncer = PgBouncer(upstream="postgres://postgres@127.0.0.1:5432/x")
    url = bouncer.url(database_url)   # the same database, through PgBouncer
    bouncer.restart()                 # every client and server connection cut
    bouncer.close()

Its pool is small on purpose (`pool_size` server connections per database):
clients take turns on the same server sessions, so session state one of them
left behind would be seen by the next.
"""

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2

from tests.support.ports import free_port
from tests.support.waiting import wait_until

PGBOUNCER = shutil.which("pgbouncer") or shutil.which(
    "pgbouncer", path="/usr/sbin:/sbin"
)
# PgBouncer refuses to run as root; -u drops to a user that can read its files.
AS_USER = ["-u", "postgres"] if os.geteuid() == 0 else []


class PgBouncer:
    def __init__(
        self, *, upstream: str, pool_size: int = 4, host: str = "127.0.0.1"
    ) -> None:
        if PGBOUNCER is None:
            raise RuntimeError(
                "pgbouncer is missing: apt-get install pgbouncer "
                "(make test installs it when run as root)"
            )
        parts = urlsplit(upstream)
        self.user = parts.username or "postgres"
        self.host = host  # listen_addr (another host's, in tests/multihost)
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="webhooks-pgbouncer-"))
        self.dir.chmod(0o755)
        users = self.dir / "users.txt"
        users.write_text(f'"{self.user}" "{parts.password or ""}"\n')
        self.config = self.dir / "pgbouncer.ini"
        self.config.write_text(
            "[databases]\n"
            f"* = host={parts.hostname or '127.0.0.1'} port={parts.port or 5432}\n"
            "[pgbouncer]\n"
            f"listen_addr = {host}\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"admin_users = {self.user}\n"  # SHOW POOLS etc. in db `pgbouncer`
            f"auth_file = {users}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {pool_size}\n"
            "max_client_conn = 500\n"
            "server_login_retry = 1\n"
        )
        for path in (users, self.config):
            path.chmod(0o644)
        self.log_path = self.dir / "pgbouncer.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def url(self, database_url: str) -> str:
        """`database_url`'s database and user, through this PgBouncer."""
        parts = urlsplit(database_url)
        auth = parts.netloc.rpartition("@")[0]
        address = f"{self.host}:{self.port}"
        netloc = f"{auth}@{address}" if auth else address
        return urlunsplit(parts._replace(netloc=netloc))

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [PGBOUNCER, *AS_USER, str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(self._listening, timeout=10, message="the private pgbouncer")

    def stop(self) -> None:
        """SIGTERM (PgBouncer's immediate shutdown): every connection is cut."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def show(self, what: str) -> list[dict[str, object]]:
        """PgBouncer's admin console: `SHOW POOLS`, `SHOW CLIENTS`, `SHOW
        STATS`, … as one dict per row."""
        connection = psycopg2.connect(
            host=self.host, port=self.port, user=self.user, dbname="pgbouncer"
        )
        connection.autocommit = True  # the console has no transactions
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"SHOW {what}")
                names = [column.name for column in cursor.description]
                return [dict(zip(names, row, strict=True)) for row in cursor]
        finally:
            connection.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _listening(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"pgbouncer exited:\n{self.log()[-2000:]}")
        try:
            psycopg2.connect(
                host=self.host,
                port=self.port,
                user=self.user,
                dbname="pgbouncer",  # its admin console: no server connection
                connect_timeout=2,
            ).close()
        except psycopg2.OperationalError:
            return False
        return True
