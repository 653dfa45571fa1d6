"""Encryption at rest for secrets (signing secrets, header values, OAuth2 client
secrets) with cryptography's MultiFernet.

WEBHOOK_ENCRYPTION_KEYS is a comma list of Fernet keys, newest first: the
newest encrypts, all of them decrypt, so a key is rotated by putting a new one
first, running `manage.py reencrypt_secrets`, then removing the old one.

With no keys set, a key is derived from SECRET_KEY. That is for development
only: when DEBUG is off and SECRET_KEY is not the development default (so this
is a real deployment), missing keys are a configuration error, reported by a
system check (`manage.py check`, `migrate`, `runserver`) and raised as
ImproperlyConfigured at the first encryption or decryption, so a deployment
never silently ties its secrets to SECRET_KEY.
"""

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import models, transaction
from django.db.models.functions import Cast

from webhooks_project import conf

# settings.py's SECRET_KEY default: its presence means "not configured yet".
DEV_SECRET_KEY = conf.DEV_SECRET_KEY


class DecryptionError(ImproperlyConfigured):
    """A stored value cannot be decrypted with the configured keys."""


def generate_key() -> str:
    """A new key for WEBHOOK_ENCRYPTION_KEYS."""
    return Fernet.generate_key().decode()


def _derived_key(secret_key: str) -> bytes:
    digest = hashlib.sha256(b"webhooks-encryption:" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest)


def _keys() -> tuple[str, ...]:
    return tuple(k.strip() for k in settings.WEBHOOK_ENCRYPTION_KEYS if k.strip())


def configuration_problem() -> str | None:
    """What is wrong with the encryption key configuration, if anything."""
    keys = _keys()
    if not keys:
        if not settings.DEBUG and settings.SECRET_KEY != DEV_SECRET_KEY:
            return (
                "WEBHOOK_ENCRYPTION_KEYS is not set. Outside development secrets "
                "are encrypted with explicit keys; generate one with "
                '`python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"`.'
            )
        return None
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except (ValueError, TypeError):
            return (
                f"WEBHOOK_ENCRYPTION_KEYS: key #{position} is not a Fernet key "
                "(32 url-safe base64-encoded bytes)."
            )
    return None


@checks.register(checks.Tags.security)
def check_encryption_keys(app_configs: Any = None, **kwargs: Any) -> list:
    problem = configuration_problem()
    return [checks.Error(problem, id="webhooks.E001")] if problem else []


@lru_cache(maxsize=8)
def _fernets(
    keys: tuple[str, ...], secret_key: str, debug: bool
) -> tuple[Fernet, MultiFernet]:
    problem = configuration_problem()
    if problem:
        raise ImproperlyConfigured(problem)
    if not keys:
        fernets = [Fernet(_derived_key(secret_key))]
    else:
        fernets = [Fernet(key.encode()) for key in keys]
    return fernets[0], MultiFernet(fernets)


def _current() -> tuple[Fernet, MultiFernet]:
    """(newest key, all keys). Keyed by the settings, so a changed
    configuration (or a test overriding it) takes effect at once."""
    return _fernets(_keys(), settings.SECRET_KEY, settings.DEBUG)


def fernet() -> MultiFernet:
    return _current()[1]


def encrypt(plaintext: str) -> str:
    """A Fernet token of plaintext under the newest key."""
    return _current()[0].encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """The plaintext of a token made under any configured key."""
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError(
            "a stored secret cannot be decrypted with WEBHOOK_ENCRYPTION_KEYS "
            "(was a key removed before `manage.py reencrypt_secrets` ran?)"
        ) from None


def rotate(token: str) -> str | None:
    """token re-encrypted under the newest key, or None if it already is."""
    newest, every = _current()
    try:
        newest.decrypt(token.encode())
        return None
    except InvalidToken:
        pass
    try:
        return every.rotate(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError(
            "a stored secret cannot be decrypted with WEBHOOK_ENCRYPTION_KEYS"
        ) from None


# --- re-encryption of every stored secret -------------------------------------


@dataclass
class ReencryptResult:
    rewritten: int = 0
    current: int = 0
    # "app_label.Model.field" -> values rewritten
    by_field: dict[str, int] = field(default_factory=dict)


def encrypted_fields() -> Iterable[tuple[type[models.Model], list[models.Field]]]:
    """Every model with encrypted columns (see subscriptions.fields)."""
    for model in apps.get_models():
        found = [
            f
            for f in model._meta.concrete_fields
            if getattr(f, "encrypted_at_rest", False)
        ]
        if found:
            yield model, found


def reencrypt_all(*, batch_size: int = 500) -> ReencryptResult:
    """Re-encrypt every encrypted column of every row under the newest key.

    Idempotent (values already under the newest key are left alone, and
    counted as current). Works in batches, each in its own transaction with
    its rows locked, so a concurrent write (a secret rotation) is never
    overwritten with an older value. Raises DecryptionError if a value cannot
    be decrypted with any configured key.
    """
    result = ReencryptResult()
    for model, columns in encrypted_fields():
        manager = model._base_manager
        raw = {
            f"raw_{column.attname}": Cast(column.attname, models.TextField())
            for column in columns
        }
        last_pk: Any = None
        while True:
            with transaction.atomic():
                rows = manager.select_for_update().order_by("pk")
                if last_pk is not None:
                    rows = rows.filter(pk__gt=last_pk)
                batch = list(rows.annotate(**raw).values_list("pk", *raw)[:batch_size])
                for pk, *tokens in batch:
                    changes = {}
                    for column, token in zip(columns, tokens, strict=True):
                        if not token:
                            continue
                        rotated = rotate(token)
                        if rotated is None:
                            result.current += 1
                            continue
                        changes[column.attname] = models.Value(
                            rotated, output_field=models.TextField()
                        )
                        label = f"{model._meta.label}.{column.name}"
                        result.by_field[label] = result.by_field.get(label, 0) + 1
                    if changes:
                        manager.filter(pk=pk).update(**changes)
                        result.rewritten += len(changes)
            if len(batch) < batch_size:
                break
            last_pk = batch[-1][0]
    return result
