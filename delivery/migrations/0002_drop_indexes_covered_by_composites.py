"""Drop two single-column foreign-key indexes that composite indexes already
lead with (delivery_sub_created, attempt_delivery_number): each is one more
write per delivery inserted, claimed and recorded, and per attempt.

Only the indexes are dropped; the foreign-key constraints stay as they are
(AlterField alone would drop and re-validate them, scanning both tables).
"""

import django.db.models.deletion
from django.db import migrations, models

INDEXES = [
    (
        "delivery_delivery_subscription_id_d175ba11",
        "delivery_delivery",
        "subscription_id",
    ),
    ("delivery_attempt_delivery_id_bf5c6939", "delivery_attempt", "delivery_id"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("delivery", "0001_initial"),
        ("subscriptions", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="attempt",
                    name="delivery",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="attempts",
                        to="delivery.delivery",
                    ),
                ),
                migrations.AlterField(
                    model_name="delivery",
                    name="subscription",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="deliveries",
                        to="subscriptions.subscription",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{name}"',
                    reverse_sql=f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ("{column}")',
                )
                for name, table, column in INDEXES
            ],
        ),
    ]
