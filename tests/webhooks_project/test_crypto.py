"""Secrets at rest: a dump of the database shows none of them in clear; keys
rotate with `manage.py reencrypt_secrets`; a deployment without keys refuses
to run."""

import io
import subprocess

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from delivery.sender.signing import new_secret
from subscriptions.models import Subscription
from tests.support.factories import SubscriptionFactory
from webhooks_project import crypto

HEADER_VALUE = "hdr-value-6b1f2c9e"
CLIENT_SECRET = "client-secret-93ad71"


def subscription_with_secrets(**fields) -> tuple[Subscription, list[str]]:
    secret, previous = new_secret(), new_secret()
    subscription = SubscriptionFactory(
        url="https://dump-check.example/hooks",
        secret=secret,
        previous_secret=previous,
        headers=[{"key": "x-protection-header", "value": HEADER_VALUE}],
        oauth2_token_url="https://idp.example/oauth/token",
        oauth2_client_id="dump-client",
        oauth2_client_secret=CLIENT_SECRET,
        **fields,
    )
    return subscription, [secret, previous, HEADER_VALUE, CLIENT_SECRET]


def raw_columns(subscription: Subscription) -> dict[str, str]:
    columns = ["secret", "previous_secret", "headers", "oauth2_client_secret"]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(columns)} FROM subscriptions_subscription "
            "WHERE id = %s",
            [subscription.pk],
        )
        return dict(zip(columns, cursor.fetchone(), strict=True))


@pytest.mark.django_db(transaction=True)
def test_a_pg_dump_of_the_database_contains_no_secret_in_clear():
    subscription, secrets = subscription_with_secrets()
    db = connection.settings_dict

    dump = subprocess.run(
        [
            "pg_dump",
            "--host",
            db["HOST"] or "127.0.0.1",
            "--port",
            str(db["PORT"] or 5432),
            "--username",
            db["USER"],
            "--no-password",
            db["NAME"],
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout

    assert "https://dump-check.example/hooks" in dump  # the row is in the dump
    assert "dump-client" in dump
    for secret in secrets:
        assert secret not in dump
    # …and the application still reads them.
    fresh = Subscription.objects.get(pk=subscription.pk)
    assert [
        fresh.secret,
        fresh.previous_secret,
        fresh.headers[0]["value"],
        fresh.oauth2_client_secret,
    ] == secrets


@pytest.mark.django_db
def test_no_column_of_any_table_holds_a_secret_in_clear():
    _, secrets = subscription_with_secrets()

    with connection.cursor() as cursor:
        everything = []
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT * FROM "{table}"')
            everything.extend(repr(row) for row in cursor.fetchall())
    text = "\n".join(everything)

    assert "dump-check.example" in text
    for secret in secrets:
        assert secret not in text


@pytest.mark.django_db
def test_rotating_the_encryption_key_reencrypts_every_secret(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.WEBHOOK_ENCRYPTION_KEYS = [old]
    subscription, secrets = subscription_with_secrets()
    assert all(
        Fernet(old).decrypt(v.encode()) for v in raw_columns(subscription).values()
    )

    # 1. the new key goes first; 2. re-encrypt; 3. the old key is removed.
    settings.WEBHOOK_ENCRYPTION_KEYS = [new, old]
    out = io.StringIO()
    call_command("reencrypt_secrets", stdout=out)

    assert (
        "Re-encrypted 4 values under the newest key (0 already were)." in out.getvalue()
    )
    for value in raw_columns(subscription).values():
        Fernet(new).decrypt(value.encode())
        with pytest.raises(InvalidToken):
            Fernet(old).decrypt(value.encode())

    settings.WEBHOOK_ENCRYPTION_KEYS = [new]
    fresh = Subscription.objects.get(pk=subscription.pk)
    assert [
        fresh.secret,
        fresh.previous_secret,
        fresh.headers[0]["value"],
        fresh.oauth2_client_secret,
    ] == secrets


@pytest.mark.django_db
def test_reencrypting_twice_changes_nothing_the_second_time(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.WEBHOOK_ENCRYPTION_KEYS = [old]
    subscription, _ = subscription_with_secrets()
    settings.WEBHOOK_ENCRYPTION_KEYS = [new, old]
    call_command("reencrypt_secrets", stdout=io.StringIO())
    before = raw_columns(subscription)

    out = io.StringIO()
    call_command("reencrypt_secrets", stdout=out)

    assert (
        "Re-encrypted 0 values under the newest key (4 already were)." in out.getvalue()
    )
    assert raw_columns(subscription) == before


@pytest.mark.django_db
def test_it_reencrypts_in_batches(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.WEBHOOK_ENCRYPTION_KEYS = [old]
    rows = [SubscriptionFactory(secret=new_secret()) for _ in range(3)]
    settings.WEBHOOK_ENCRYPTION_KEYS = [new, old]

    out = io.StringIO()
    call_command("reencrypt_secrets", "--batch-size", "1", stdout=out)

    assert "Re-encrypted 3 values" in out.getvalue()
    settings.WEBHOOK_ENCRYPTION_KEYS = [new]
    assert [Subscription.objects.get(pk=r.pk).secret for r in rows] == [
        r.secret for r in rows
    ]


@pytest.mark.django_db
def test_removing_a_key_before_reencrypting_is_a_clear_error(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.WEBHOOK_ENCRYPTION_KEYS = [old]
    subscription, secrets = subscription_with_secrets()
    settings.WEBHOOK_ENCRYPTION_KEYS = [new]

    with pytest.raises(crypto.DecryptionError, match="reencrypt_secrets") as caught:
        Subscription.objects.get(pk=subscription.pk)
    assert not any(secret in str(caught.value) for secret in secrets)
    with pytest.raises(CommandError, match="cannot be decrypted"):
        call_command("reencrypt_secrets", stdout=io.StringIO())


def test_a_deployment_without_encryption_keys_refuses_to_run(settings):
    settings.DEBUG = False
    settings.SECRET_KEY = "a-real-production-secret-key-0123456789"
    settings.WEBHOOK_ENCRYPTION_KEYS = []

    with pytest.raises(
        ImproperlyConfigured, match="WEBHOOK_ENCRYPTION_KEYS is not set"
    ):
        crypto.encrypt("x")
    errors = checks.run_checks(tags=[checks.Tags.security])
    assert "webhooks.E001" in [error.id for error in errors]

    settings.WEBHOOK_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    assert crypto.decrypt(crypto.encrypt("x")) == "x"
    assert "webhooks.E001" not in [
        e.id for e in checks.run_checks(tags=[checks.Tags.security])
    ]


def test_development_derives_a_key_from_the_secret_key(settings):
    settings.WEBHOOK_ENCRYPTION_KEYS = []
    settings.DEBUG = True
    settings.SECRET_KEY = "some-local-secret"
    token = crypto.encrypt("x")

    settings.DEBUG = False
    settings.SECRET_KEY = crypto.DEV_SECRET_KEY
    assert crypto.decrypt(crypto.encrypt("y")) == "y"
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(token)  # derived from another SECRET_KEY


def test_an_invalid_key_is_reported_by_position_without_echoing_it(settings):
    settings.WEBHOOK_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), "not-a-key"]

    with pytest.raises(ImproperlyConfigured) as caught:
        crypto.encrypt("x")

    assert "key #2 is not a Fernet key" in str(caught.value)
    assert "not-a-key" not in str(caught.value)
