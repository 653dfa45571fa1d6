"""A worker's broker channel closed after Redis went away must not raise:
Celery would take the error for an unrecoverable one and exit."""

import os

from kombu import Connection

import webhooks_project.celery  # noqa: F401 - applies the broker settings


def test_closing_a_channel_with_unacked_wake_ups_after_losing_redis_does_not_raise():
    connection = Connection(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    channel = connection.channel()
    channel.qos._delivered["tag-1"] = object()  # a wake-up received, not acked
    channel.connection.client = None  # as when the connection was released
    channel.close()  # kombu 5.7 raised AttributeError here
    assert channel.closed
