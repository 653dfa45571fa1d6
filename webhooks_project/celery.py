"""The Celery application: workers deliver, beat runs the periodic sweeps."""

import os
from typing import Any

import redis
from celery import Celery
from kombu.transport import redis as kombu_redis

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webhooks_project.settings")

# kombu 5.7's Redis channel, used after its broker connection was released
# (Redis went away), builds a new client from that connection and raises
# AttributeError, which Celery treats as an unrecoverable error: the worker
# exits instead of reconnecting (found by tests/faults, Redis stopped while
# publishing; seen at channel close and at a late ack). Two changes make it a
# broker error Celery recovers from:
# - unacked wake-ups are not restored when a channel closes: they are
#   redelivered after the visibility timeout, and dispatch_due finds every
#   due row anyway;
# - a channel without a connection raises redis' ConnectionError, a
#   connection error kombu and Celery handle (reconnect, log a failed ack).
kombu_redis.QoS.restore_at_shutdown = False
_connparams = kombu_redis.Channel._connparams


def _connparams_of_a_live_connection(
    channel: kombu_redis.Channel, *args: Any, **kwargs: Any
) -> dict[str, Any]:
    if channel.connection is None or channel.connection.client is None:
        raise redis.exceptions.ConnectionError("the broker connection was released")
    return _connparams(channel, *args, **kwargs)


kombu_redis.Channel._connparams = _connparams_of_a_live_connection

app = Celery("webhooks")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def beat_schedule() -> dict[str, dict[str, Any]]:
    """The periodic sweeps, their intervals from settings.

    Each message expires after a couple of its intervals: while workers are
    down, beat's backlog of sweeps is dropped instead of run in a burst later.
    """
    from django.conf import settings

    def every(task: str, interval: float) -> dict[str, Any]:
        return {
            "task": task,
            "schedule": interval,
            "options": {"expires": max(2 * interval, 1.0)},
        }

    return {
        "dispatch-due": every(
            "delivery.tasks.dispatch_due",
            settings.WEBHOOK_DISPATCH_INTERVAL.total_seconds(),
        ),
        "expire-deliveries": every(
            "delivery.tasks.expire_deliveries",
            settings.WEBHOOK_EXPIRE_INTERVAL.total_seconds(),
        ),
        "prune-old-rows": every(
            "delivery.tasks.prune_old_rows",
            settings.WEBHOOK_PRUNE_INTERVAL.total_seconds(),
        ),
    }


@app.on_after_configure.connect
def _schedule_sweeps(sender: Celery, **kwargs: Any) -> None:
    # Settings are read here, once Django's settings are configured, not at import.
    sender.conf.beat_schedule = beat_schedule()
