"""Server-side prepared statements (PostgreSQL) for the hottest statements.

Planning the publish statement costs PostgreSQL about as much as running it
(~0.4 ms each); a statement PREPAREd once per connection is only executed.
A prepared statement belongs to the database session: it is prepared again
when Django opens a new connection, and survives a rolled-back transaction.
Not behind a transaction-pooling proxy (PgBouncer's `pool_mode =
transaction`), which hands each transaction another server session: with
DB_TRANSACTION_POOLING=true the statement runs as plain parameterized SQL.
(PgBouncer 1.21+ could keep protocol-level prepared statements across
sessions, but psycopg2 sends none, and Debian 12 ships PgBouncer 1.18.)

The SQL takes %s placeholders as usual; every parameter's type must be clear
from its context (a column compared or assigned, or an explicit cast), since
PostgreSQL types the parameters when it prepares.
"""

from collections.abc import Sequence
from typing import Any

from django.conf import settings

# Distinct statements prepared per connection at most; others run unprepared.
MAX_PER_CONNECTION = 32


def execute(cursor: Any, sql: str, params: Sequence[Any]) -> None:
    """cursor.execute(sql, params), through a prepared statement on
    PostgreSQL (a plain execute elsewhere)."""
    wrapper = cursor.db
    if wrapper.vendor != "postgresql" or "%%" in sql or settings.DB_TRANSACTION_POOLING:
        cursor.execute(sql, params)
        return
    raw = wrapper.connection
    state = getattr(wrapper, "_webhooks_prepared", None)
    if state is None or state[0] is not raw:
        state = (raw, {})
        wrapper._webhooks_prepared = state
    names: dict[str, str] = state[1]
    name = names.get(sql)
    if name is None:
        if len(names) >= MAX_PER_CONNECTION:
            cursor.execute(sql, params)
            return
        name = f"webhooks_{len(names) + 1}"
        parts = sql.split("%s")
        if len(parts) - 1 != len(params):
            raise ValueError("one parameter per %s placeholder")
        numbered = parts[0] + "".join(
            f"${n}{part}" for n, part in enumerate(parts[1:], start=1)
        )
        cursor.execute(f"PREPARE {name} AS {numbered}")
        names[sql] = name
    if params:
        cursor.execute(f"EXECUTE {name} ({', '.join(['%s'] * len(params))})", params)
    else:
        cursor.execute(f"EXECUTE {name}")
