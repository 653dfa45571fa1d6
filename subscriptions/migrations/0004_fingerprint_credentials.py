"""Live webhooks' fingerprints gain the credentials digest (issue 14): two
webhooks that differ only in header values, OAuth2 settings or profile are not
duplicates. The functions are frozen copies of subscriptions.services'
credentials_digest and fingerprint as of this migration. Reversing it fails
(the unique constraint) while two live webhooks differ only in credentials:
delete one of them first."""

import hashlib
import json

from django.db import migrations


def _credentials_digest(sub) -> str:
    oauth2 = (
        [
            sub.oauth2_token_url,
            sub.oauth2_client_id,
            sub.oauth2_client_secret,
            sub.oauth2_audience or "",
            sub.oauth2_scope or "",
        ]
        if sub.oauth2_token_url
        else None
    )
    canonical = {
        "headers": sorted([h["key"].lower(), h["value"]] for h in sub.headers or []),
        "oauth2": oauth2,
        "profile": sub.profile,
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _fingerprint(sub) -> str:
    identity = [
        sub.url,
        sub.tracking_id or "",
        sorted(set(sub.event_groups)),
        _credentials_digest(sub),
    ]
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()


def add_credentials(apps, schema_editor) -> None:
    Subscription = apps.get_model("subscriptions", "Subscription")
    # Every row, expired ones too, so a fingerprint means one thing.
    for sub in Subscription.objects.iterator(chunk_size=1000):
        Subscription.objects.filter(pk=sub.pk).update(fingerprint=_fingerprint(sub))


def drop_credentials(apps, schema_editor) -> None:
    Subscription = apps.get_model("subscriptions", "Subscription")
    for sub in Subscription.objects.iterator(chunk_size=1000):
        identity = [sub.url, sub.tracking_id or "", sorted(set(sub.event_groups))]
        digest = hashlib.sha256(json.dumps(identity).encode()).hexdigest()
        Subscription.objects.filter(pk=sub.pk).update(fingerprint=digest)


class Migration(migrations.Migration):
    dependencies = [("subscriptions", "0003_webhook_delivery_ttl")]

    operations = [migrations.RunPython(add_credentials, drop_credentials)]
