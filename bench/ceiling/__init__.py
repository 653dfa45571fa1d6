"""The publish ceiling: the least a Django view can do for one published
event — parse the JSON body and INSERT it in one transaction — served by the
Procfile's web line (same gunicorn settings) and driven by the same
publishers as the service. What a single-event publish is compared with.

    DATABASE_URL=postgres://…/wh_bench_ceiling gunicorn bench.ceiling.wsgi …

The bench creates the table (TABLE_SQL) in a database of its own.
"""

TABLE = "ceiling_event"
TABLE_SQL = (
    f"CREATE TABLE {TABLE} (id uuid PRIMARY KEY, body jsonb NOT NULL, "
    "created_at timestamptz NOT NULL)"
)
