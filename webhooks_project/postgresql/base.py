"""Django's PostgreSQL backend with a health check that costs no round trip
on a connection in steady use (ENGINE "webhooks_project.postgresql";
DB_CONN_HEALTH_CHECKS, docs/operations.md).

Django's check sends `SELECT 1` before the first query of every request
(Celery's fixup, every CELERY_DB_REUSE_MAX * 2 tasks). On a publish that is
one of two round trips to PostgreSQL, and one of the two statements it runs.
Like pgxpool, which pings a connection only when it has been idle for more
than a second, this backend pings only a connection whose last check is
older than PING_AFTER. A connection checked more recently is judged by its
socket: a server that ended the session (a restart, pg_terminate_backend,
PgBouncer going away) has sent its error and closed the socket, which then
polls readable, while a healthy session with no query running has nothing to
say. Anything else (a transaction left open, a closed connection) gets
Django's `SELECT 1`.
"""

import select
import time

from django.db.backends.postgresql import base
from psycopg2.extensions import TRANSACTION_STATUS_IDLE

# Seconds since a connection's last check (or its opening) after which the
# socket alone is not trusted and Django's SELECT 1 runs.
PING_AFTER = 1.0


class DatabaseWrapper(base.DatabaseWrapper):
    _checked_at = float("-inf")

    def connect(self) -> None:
        super().connect()
        self._checked_at = time.monotonic()

    def close_if_health_check_failed(self) -> None:
        if (
            self.connection is not None
            and self.health_check_enabled
            and not self.health_check_done
        ):
            now = time.monotonic()
            recent = now - self._checked_at < PING_AFTER
            self._checked_at = now
            if recent and self._session_is_quiet():
                self.health_check_done = True
                return
        super().close_if_health_check_failed()

    def _session_is_quiet(self) -> bool:
        """Idle between transactions, with nothing from the server unread."""
        connection = self.connection
        if (
            connection.closed
            or connection.info.transaction_status != TRANSACTION_STATUS_IDLE
        ):
            return False
        poller = select.poll()
        poller.register(connection.fileno(), select.POLLIN)
        return not poller.poll(0)
