"""Worker database connections that broke (PostgreSQL restarted, a network
cut) are dropped after the task that met the error, so the next task on that
thread connects afresh.

Django only checks connections between HTTP requests, and Celery's fixup
checks them only every CELERY_DB_REUSE_MAX * 2 tasks: without this, every
task on a thread whose connection died fails with "connection already closed"
for thousands of tasks, and nothing is delivered. Connections that had no
error are left alone, so a healthy worker pays no extra query per task.
"""

from typing import Any

from celery.signals import task_postrun, worker_init
from django.db import connections


def _drop_broken_connections(**kwargs: Any) -> None:
    # task_postrun runs on the thread that ran the task: these are its connections.
    for connection in connections.all(initialized_only=True):
        if connection.errors_occurred:
            connection.close_if_unusable_or_obsolete()


def _on_worker_init(**kwargs: Any) -> None:
    task_postrun.connect(_drop_broken_connections, weak=False)


def connect() -> None:
    """Called once at start-up: only a Celery worker's tasks are watched."""
    worker_init.connect(_on_worker_init, weak=False)
