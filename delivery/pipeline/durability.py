"""Worker database sessions commit without waiting for the WAL flush.

Everything a worker writes can be redone: a claim lost in a PostgreSQL crash
makes its row due again, a lost result makes the delivery be sent again
(at-least-once; receivers deduplicate on webhook-id), a lost sweep runs again.
So worker sessions use `synchronous_commit = off`, saving a disk flush per
batch and per flush of results. Publishing (the web process, whose 202 is a
promise) keeps synchronous commits.
"""

from typing import Any

from celery.signals import worker_init
from django.db.backends.signals import connection_created


def _asynchronous_commits(sender: Any, connection: Any, **kwargs: Any) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO off")


def _on_worker_init(**kwargs: Any) -> None:
    connection_created.connect(_asynchronous_commits, weak=False)


def connect() -> None:
    """Called once at start-up: only a Celery worker's connections change."""
    worker_init.connect(_on_worker_init, weak=False)
