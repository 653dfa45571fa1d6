"""Standard Webhooks signatures (https://www.standardwebhooks.com/), via the
`standardwebhooks` package so any Standard Webhooks library can verify them,
and the raas profile's plain body HMAC (docs/api.md, "Profiles")."""

import base64
import hashlib
import hmac
import secrets as _random
from collections.abc import Sequence
from datetime import datetime

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh `whsec_` signing secret (24 random bytes, base64)."""
    return SECRET_PREFIX + base64.b64encode(_random.token_bytes(24)).decode()


def signature_header(
    *, msg_id: str, timestamp: datetime, body: str, secrets: Sequence[str]
) -> str:
    """The `webhook-signature` value: one `v1,<b64>` per secret, space separated.

    During a rotation overlap pass [new, old] so receivers holding either
    verify. Raises ValueError without a secret: a request is never unsigned
    by accident.
    """
    unique = list(dict.fromkeys(s for s in secrets if s))
    if not unique:
        raise ValueError("signature_header needs at least one secret")
    return " ".join(
        Webhook(secret).sign(msg_id=msg_id, timestamp=timestamp, data=body)
        for secret in unique
    )


def raas_signature(*, body: bytes, secret: str) -> str:
    """The raas profile's `x-raas-webhook-signature`: lowercase hex HMAC-SHA256
    of the raw body, keyed with the webhook's secret exactly as the API returned
    it (the whole `whsec_…` string, UTF-8).

    Seed 002: "We generate a signature using the secret mentioned on the
    Subscription API." It names no encoding of the key, so the receiver uses
    the string it was given, with nothing to decode. Raises ValueError without
    a secret.
    """
    if not secret:
        raise ValueError("raas_signature needs a secret")
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
