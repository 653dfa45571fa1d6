import pytest
from django.db import connection

from webhooks_project import prepared

SQL = "SELECT %s::int * 2"


def prepared_statements() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_the_statement_is_prepared_once_per_session(settings):
    settings.DB_TRANSACTION_POOLING = False
    before = prepared_statements()
    with connection.cursor() as cursor:
        for n in (1, 2):
            prepared.execute(cursor, SQL, [n])
            assert cursor.fetchone()[0] == 2 * n
    assert prepared_statements() == before + 1


@pytest.mark.django_db
def test_behind_a_transaction_pooler_it_runs_as_plain_parameterized_sql(settings):
    # A PREPAREd statement lives in one server session; PgBouncer's next
    # transaction may run on another, where it does not exist.
    settings.DB_TRANSACTION_POOLING = True
    before = prepared_statements()
    with connection.cursor() as cursor:
        prepared.execute(cursor, SQL, [21])
        assert cursor.fetchone()[0] == 42
    assert prepared_statements() == before
