"""A worker's broker channel closed after Redis went away must not raise:
Celery would take the error for an unrecoverable one and exit."""

import os

import pytest
import redis
from kombu import Connection

import webhooks_project.celery  # noqa: F401 - applies the broker settings


def test_closing_a_channel_with_unacked_wake_ups_after_losing_redis_does_not_raise():
    connection = Connection(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    channel = connection.channel()
    channel.qos._delivered["tag-1"] = object()  # a wake-up received, not acked
    channel.connection.client = None  # as when the connection was released
    channel.close()  # kombu 5.7 raised AttributeError here
    assert channel.closed


def test_a_late_ack_on_a_released_connection_is_a_connection_error():
    connection = Connection(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    channel = connection.channel()
    channel.connection.client = None
    # A connection error is what Celery recovers from (it logs the failed ack
    # and reconnects); kombu 5.7 raised AttributeError, and the worker exited.
    with pytest.raises(redis.exceptions.ConnectionError):
        channel.qos.ack("tag-1")
