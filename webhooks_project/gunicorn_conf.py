"""Gunicorn's hooks (Procfile: `gunicorn -c python:webhooks_project.gunicorn_conf`).

Only the Prometheus bookkeeping of multiprocess mode lives here; every other
option stays on the Procfile's command line.
"""

from typing import Any

from webhooks_project import metrics


def child_exit(server: Any, worker: Any) -> None:
    # A web worker that exited (recycled, crashed) gives back its live-gauge
    # files; its counters stay in the totals.
    metrics.mark_process_dead(worker.pid)
