import pytest
from django.db import connections
from django.db.backends.signals import connection_created

from delivery.pipeline import durability


def synchronous_commit() -> tuple[str, str]:
    """(what a statement of a new connection runs with, what its session has
    afterwards, read past Django's execute wrappers)."""
    connection = connections.create_connection("default")
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            statement = cursor.fetchone()[0]
        with connection.connection.cursor() as raw:
            raw.execute("SHOW synchronous_commit")
            session = raw.fetchone()[0]
        return statement, session
    finally:
        connection.close()


@pytest.mark.django_db
def test_worker_transactions_commit_without_waiting_for_the_disk():
    assert synchronous_commit() == ("on", "on")  # web: a 202 is a promise
    durability._on_worker_init()  # what Celery's worker_init signal runs
    try:
        # per transaction only: a pooled server session is left as it was
        assert synchronous_commit() == ("off", "on")
    finally:
        connection_created.disconnect(durability._asynchronous_commits)
    assert synchronous_commit() == ("on", "on")


@pytest.mark.django_db(transaction=True)
def test_a_worker_transaction_keeps_the_setting_and_its_results():
    durability._on_worker_init()
    connection = connections.create_connection("default")
    try:
        with connection.cursor() as cursor:
            connection.set_autocommit(False)
            cursor.execute("SELECT 1")
            cursor.execute("SHOW synchronous_commit")
            inside = cursor.fetchone()[0]
            cursor.execute("SELECT %s::int + 1", [41])
            result = cursor.fetchone()[0]
            connection.commit()
            connection.set_autocommit(True)
    finally:
        connection_created.disconnect(durability._asynchronous_commits)
        connection.close()
    assert (inside, result) == ("off", 42)
