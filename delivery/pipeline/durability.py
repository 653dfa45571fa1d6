"""Worker transactions commit without waiting for the WAL flush.

Everything a worker writes can be redone: a claim lost in a PostgreSQL crash
makes its row due again, a lost result makes the delivery be sent again
(at-least-once; receivers deduplicate on webhook-id), a lost sweep runs again.
So a worker's transactions run with `synchronous_commit = off`, saving a disk
flush per batch and per flush of results. Publishing (the web process, whose
202 is a promise) keeps synchronous commits.

The setting is per *transaction* (`SET LOCAL`), never per session: behind
PgBouncer's transaction pooling a session setting would stay on the server
connection and be inherited by the next client's transactions, the web
process's publishes among them. Every statement a worker's connection sends is
prefixed with `SET LOCAL synchronous_commit TO off;` in the same query string:
a statement outside an atomic block is then one implicit transaction with the
setting, a statement inside one sets it for that transaction (again, which
costs a parse but no round trip). psycopg2 sends the whole string as one
simple query, so this adds no round trip.
"""

from collections.abc import Callable
from typing import Any

from celery.signals import worker_init
from django.db.backends.signals import connection_created

PREFIX = "SET LOCAL synchronous_commit TO off; "


def _asynchronous(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
) -> Any:
    return execute(PREFIX + sql, params, many, context)


def _asynchronous_commits(sender: Any, connection: Any, **kwargs: Any) -> None:
    if connection.vendor == "postgresql" and _asynchronous not in (
        connection.execute_wrappers
    ):
        connection.execute_wrappers.append(_asynchronous)


def _on_worker_init(**kwargs: Any) -> None:
    connection_created.connect(_asynchronous_commits, weak=False)


def connect() -> None:
    """Called once at start-up: only a Celery worker's connections change."""
    worker_init.connect(_on_worker_init, weak=False)
