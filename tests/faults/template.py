"""The fault tests' databases: a template migrated once per session (with the
API keys in it), and a copy of it per test.

    keys = migrate_template(private_postgres)
    name = copy_template(private_postgres)   # private_postgres.url(name)
    ...
    drop_database(private_postgres, name)
"""

import subprocess
import sys
import uuid

from tests.faults.servers import PrivatePostgres
from tests.faults.service import Keys
from tests.support.paths import ROOT
from tests.support.stack import ACCELERATED, Stack

TEMPLATE = "faults_template"
# ACCELERATED, but with a TTL that outlasts every outage a scenario injects: an
# event expiring while PostgreSQL restarts would be a loss the test caused.
FAULT_ENV: dict[str, str] = {
    **ACCELERATED,
    "WEBHOOK_DELIVERY_TTL": "120s",
    "WEBHOOK_PUBLISH_THROTTLE_RATE": "1000000/min",
    "WEBHOOK_THROTTLE_RATE": "1000000/min",
}


def manage(database_url: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=Stack(database_url=database_url, redis_url="", env=FAULT_ENV).environ(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise AssertionError(f"manage.py {args} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def migrate_template(server: PrivatePostgres) -> Keys:
    """Migrates the template database and creates the API keys in it."""
    _execute(server, f"CREATE DATABASE {TEMPLATE}")
    url = server.url(TEMPLATE)
    manage(url, "migrate", "--noinput", "-v", "0")
    publisher = manage(
        url, "create_api_key", "--client", "platform", "--scope", "publish"
    )
    tenant = manage(
        url, "create_api_key", "--client", "acme", "--scope", "subscriptions"
    )
    return Keys(publisher=publisher.strip(), tenant=tenant.strip())


def copy_template(server: PrivatePostgres) -> str:
    """A fresh database cloned from the template; returns its name."""
    name = f"faults_{uuid.uuid4().hex[:8]}"
    _execute(server, f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    return name


def drop_database(server: PrivatePostgres, name: str) -> None:
    _execute(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _execute(server: PrivatePostgres, sql: str) -> None:
    connection = server.connect()
    with connection.cursor() as cursor:
        cursor.execute(sql)
    connection.close()
