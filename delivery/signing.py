"""Standard Webhooks signatures (https://www.standardwebhooks.com/), via the
`standardwebhooks` package so any Standard Webhooks library can verify them."""

import base64
import secrets as _random
from collections.abc import Sequence
from datetime import datetime

from standardwebhooks.webhooks import Webhook


def new_secret() -> str:
    """A fresh `whsec_` signing secret (24 random bytes, base64)."""
    return "whsec_" + base64.b64encode(_random.token_bytes(24)).decode()


def signature_header(
    *, msg_id: str, timestamp: datetime, body: str, secrets: Sequence[str]
) -> str:
    """The `webhook-signature` value: one `v1,<b64>` per secret, space separated.

    During a rotation overlap pass [new, old] so receivers holding either verify.
    """
    return " ".join(
        Webhook(secret).sign(msg_id=msg_id, timestamp=timestamp, data=body)
        for secret in secrets
    )
