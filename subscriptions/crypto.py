"""Encryption at rest for secrets (signing secrets, header values, OAuth2 client
secrets) with cryptography's MultiFernet.

WEBHOOK_ENCRYPTION_KEYS is a comma list of Fernet keys, newest first: the
newest encrypts, all of them decrypt, so keys can be rotated and old rows
re-encrypted afterwards (`manage.py reencrypt_secrets`). With no keys set a
key is derived from SECRET_KEY, which is only acceptable in development.
"""

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def _derived_key() -> bytes:
    digest = hashlib.sha256(
        b"webhooks-encryption:" + settings.SECRET_KEY.encode()
    ).digest()
    return base64.urlsafe_b64encode(digest)


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    if not keys:
        return MultiFernet([Fernet(_derived_key())])
    try:
        return MultiFernet([Fernet(key.strip().encode()) for key in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"WEBHOOK_ENCRYPTION_KEYS: {exc}") from None


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.WEBHOOK_ENCRYPTION_KEYS), settings.SECRET_KEY)


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    return fernet().decrypt(token.encode()).decode()


def rotate(token: str) -> str:
    """Re-encrypt a token under the newest key (a no-op for the plaintext)."""
    return fernet().rotate(token.encode()).decode()
