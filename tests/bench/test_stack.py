import time

import psycopg2
import pytest

from bench.stack import APPLICATION_NAMES, Database, postgres_groups

URL = "postgres://postgres@127.0.0.1:5432/wh_bench_test_settle"


@pytest.fixture
def database():
    database = Database(URL)
    database.create_empty()
    yield database
    database._admin(f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')


def _dead_rows_and_vacuumed(database: Database) -> tuple[int, bool]:
    return database.fetch_one(
        "SELECT n_dead_tup, last_vacuum IS NOT NULL FROM pg_stat_user_tables "
        "WHERE relname = 'rows'"
    )


def test_settle_leaves_no_vacuum_work_behind(database):
    connection = database.connect()
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            # autovacuum off for the table: only settle() may vacuum it.
            cursor.execute(
                "CREATE TABLE rows (id int PRIMARY KEY, n int) "
                "WITH (autovacuum_enabled = false)"
            )
            cursor.execute(
                "INSERT INTO rows SELECT g, 0 FROM generate_series(1, 2000) g"
            )
            cursor.execute("UPDATE rows SET n = 1")
    finally:
        connection.close()
    deadline = time.monotonic() + 10
    while _dead_rows_and_vacuumed(database)[0] < 2000 and time.monotonic() < deadline:
        time.sleep(0.1)  # statistics reach the view shortly after the write
    assert _dead_rows_and_vacuumed(database) == (2000, False)

    database.settle()

    assert _dead_rows_and_vacuumed(database) == (0, True)


def test_settle_skips_the_checkpoint_for_a_role_that_may_not_run_one(database):
    connection = psycopg2.connect(URL.replace("wh_bench_test_settle", "postgres"))
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("DROP ROLE IF EXISTS wh_bench_plain")
            cursor.execute("CREATE ROLE wh_bench_plain LOGIN")
            cursor.execute(f'ALTER DATABASE "{database.name}" OWNER TO wh_bench_plain')
        plain = Database(URL.replace("postgres@", "wh_bench_plain@"))
        plain.settle()  # VACUUM as the owner; CHECKPOINT refused and skipped
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'ALTER DATABASE "{database.name}" OWNER TO postgres')
            cursor.execute("DROP ROLE IF EXISTS wh_bench_plain")
        connection.close()


def test_transactions_counts_each_autocommit_statement(database):
    before = database.transactions()
    connection = database.connect()
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            for _ in range(25):
                cursor.execute("SELECT 1")
    finally:
        connection.close()  # a backend reports its counts when it exits
    readings = 1  # each reading is a transaction of its own, counted too
    for _ in range(50):  # the exit's report, within 5 s
        counted = database.transactions() - before
        readings += 1
        if counted >= 25:
            break
        time.sleep(0.1)
    # Beside the 25: the readings' own transactions and a few of their
    # connections' set-up; the bench divides by 16,000 events.
    assert 25 <= counted <= 25 + 2 * readings + 5


def _backend(database: Database, application_name: str):
    """A connection under `application_name` and its backend's pid."""
    connection = psycopg2.connect(database.url, application_name=application_name)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return connection, cursor.fetchone()[0]


def test_postgres_groups_part_the_backends_by_the_procfile_s_names(database):
    web, web_pid = _backend(database, APPLICATION_NAMES["web"])
    worker, worker_pid = _backend(database, APPLICATION_NAMES["worker"])
    other, other_pid = _backend(database, "psql")
    try:
        groups = {name: set(pids()) for name, pids in postgres_groups(database).items()}
    finally:
        for connection in (web, worker, other):
            connection.close()
    assert groups["postgres (web)"] == {web_pid}
    assert groups["postgres (worker)"] == {worker_pid}
    # Everything else PostgreSQL runs (the postmaster, whose children's time
    # holds ended backends, other connections) is the rest, counted once.
    assert other_pid in groups["postgres (rest)"]
    assert not groups["postgres (rest)"] & {web_pid, worker_pid}
    assert len(groups["postgres (rest)"]) > 1


def test_the_ceiling_s_groups_name_only_the_web(database):
    assert set(postgres_groups(database, parts=("web",))) == {
        "postgres (web)",
        "postgres (rest)",
    }
