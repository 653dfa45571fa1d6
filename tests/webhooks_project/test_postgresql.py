"""The PostgreSQL backend's health check (webhooks_project/postgresql):
a connection checked within the last PING_AFTER seconds is judged by its
socket, without a round trip; a dead session is still caught before a
request uses it; an older connection gets Django's SELECT 1. Against the
real database, watched from a second connection through pg_stat_activity."""

import time

import pytest
from django.db import connections

from webhooks_project.postgresql import base


@pytest.fixture
def open_connection():
    """A new connection to the test database, closed at the end."""
    opened = []

    def open_one():
        db = connections.create_connection("default")
        db.ensure_connection()
        opened.append(db)
        return db

    yield open_one
    for db in opened:
        db.close()


def _run(db, sql: str):
    with db.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def _next_request(db):
    """What Django does around a request (request_finished, request_started)
    and Celery around a task, then the next request's first query's check."""
    db.close_if_unusable_or_obsolete()
    db.close_if_health_check_failed()


def _last_statement(observer, db) -> str:
    with observer.cursor() as cursor:
        cursor.execute(
            "SELECT query FROM pg_stat_activity WHERE pid = %s",
            [db.connection.info.backend_pid],
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_a_connection_in_steady_use_is_not_pinged(open_connection):
    db, observer = open_connection(), open_connection()
    assert db.health_check_enabled

    _run(db, "SELECT 'the request before'")
    _next_request(db)

    assert db.connection is not None
    assert _last_statement(observer, db) == "SELECT 'the request before'"


@pytest.mark.django_db
def test_a_session_the_server_ended_is_replaced_before_the_request_uses_it(
    open_connection,
):
    db, observer = open_connection(), open_connection()
    _run(db, "SELECT 1")
    pid = db.connection.info.backend_pid
    assert _run(observer, f"SELECT pg_terminate_backend({pid})")
    alive = f"SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}"
    for _ in range(100):  # the backend's exit, within 5 s
        if not _run(observer, alive):
            break
        time.sleep(0.05)

    _next_request(db)

    assert db.connection is None  # closed by the check, not by a failed query
    assert _run(db, "SELECT 42") == 42
    assert db.connection.info.backend_pid != pid


@pytest.mark.django_db
def test_a_connection_idle_longer_than_ping_after_is_pinged(
    open_connection, monkeypatch
):
    db, observer = open_connection(), open_connection()
    _run(db, "SELECT 'the request before'")
    monkeypatch.setattr(base, "PING_AFTER", 0.05)
    time.sleep(0.1)

    _next_request(db)

    assert _last_statement(observer, db) == "SELECT 1"


@pytest.mark.django_db
def test_a_connection_left_in_a_transaction_is_pinged(open_connection):
    db, observer = open_connection(), open_connection()
    db.connection.autocommit = False  # psycopg2 opens a transaction on the next query
    _run(db, "SELECT 'inside a transaction'")
    db.health_check_done = False

    db.close_if_health_check_failed()

    assert _last_statement(observer, db) == "SELECT 1"
