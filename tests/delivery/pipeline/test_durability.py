import pytest
from django.db import connections
from django.db.backends.signals import connection_created

from delivery.pipeline import durability


def show_synchronous_commit() -> str:
    connection = connections.create_connection("default")
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            return cursor.fetchone()[0]
    finally:
        connection.close()


@pytest.mark.django_db
def test_worker_sessions_commit_without_waiting_for_the_disk():
    assert show_synchronous_commit() == "on"  # web processes: a 202 is a promise
    durability._on_worker_init()  # what Celery's worker_init signal runs
    try:
        assert show_synchronous_commit() == "off"
    finally:
        connection_created.disconnect(durability._asynchronous_commits)
    assert show_synchronous_commit() == "on"
