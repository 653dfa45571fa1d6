"""The PostgreSQL function with which the publish statement refuses an event
over WEBHOOK_MAX_FANOUT (events/services.py): it raises, so the statement,
and every row it inserted, is rolled back, without another round trip."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION webhook_fanout_within(
    event_id uuid, deliveries bigint, quota bigint
) RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF deliveries > quota THEN
        RAISE EXCEPTION 'WEBHOOK_MAX_FANOUT'
            USING ERRCODE = 'WHF01', DETAIL = event_id::text || ' ' || deliveries;
    END IF;
    RETURN deliveries;
END
$$
"""
DROP = "DROP FUNCTION IF EXISTS webhook_fanout_within(uuid, bigint, bigint)"


def _on_postgresql(sql: str):
    def run(apps, schema_editor) -> None:
        # SQLite (make run) checks the quota in Python instead.
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("events", "0003_event_idempotency_key_index")]

    operations = [migrations.RunPython(_on_postgresql(CREATE), _on_postgresql(DROP))]
