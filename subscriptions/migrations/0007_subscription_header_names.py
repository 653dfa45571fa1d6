from django.db import migrations, models


def copy_header_names(apps, schema_editor):
    """Fill header_names from each webhook's (encrypted) headers, once."""
    Subscription = apps.get_model("subscriptions", "Subscription")
    rows = Subscription.objects.filter(headers__isnull=False).only("id", "headers")
    batch = []
    for row in rows.iterator(chunk_size=1000):
        row.header_names = [header["key"] for header in row.headers or []]
        batch.append(row)
        if len(batch) == 1000:
            Subscription.objects.bulk_update(batch, ["header_names"])
            batch = []
    Subscription.objects.bulk_update(batch, ["header_names"])


class Migration(migrations.Migration):
    dependencies = [
        ("subscriptions", "0006_api_key_tenants"),
    ]

    operations = [
        migrations.AddField(
            model_name="subscription",
            name="header_names",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.RunPython(copy_header_names, migrations.RunPython.noop),
    ]
