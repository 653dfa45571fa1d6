"""Standard Webhooks signatures, including the rotation overlap where requests
carry the new and the old signature and receivers holding either verify."""

import base64
import json
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from delivery.sender.signing import new_secret, signature_header


def headers_for(msg_id: str, timestamp: datetime, signature: str) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
    }


def test_a_new_secret_is_a_random_whsec_secret_of_24_bytes():
    first, second = new_secret(), new_secret()

    assert first.startswith("whsec_") and first != second
    assert len(base64.b64decode(first.removeprefix("whsec_"))) == 24


def test_during_a_rotation_both_signatures_are_sent_and_each_verifies():
    old, new = new_secret(), new_secret()
    body = json.dumps({"id": "evt_1", "type": "DELIVERED"})
    now = datetime.now(UTC)

    signature = signature_header(
        msg_id="evt_1", timestamp=now, body=body, secrets=[new, old]
    )

    parts = signature.split(" ")
    assert len(parts) == 2 and all(p.startswith("v1,") for p in parts)
    headers = headers_for("evt_1", now, signature)
    assert Webhook(new).verify(body, headers) == {"id": "evt_1", "type": "DELIVERED"}
    assert Webhook(old).verify(body, headers) == {"id": "evt_1", "type": "DELIVERED"}
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)


def test_a_tampered_body_does_not_verify():
    secret = new_secret()
    now = datetime.now(UTC)
    signature = signature_header(
        msg_id="m", timestamp=now, body='{"a":1}', secrets=[secret]
    )

    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify('{"a":2}', headers_for("m", now, signature))


def test_a_secret_listed_twice_signs_once():
    secret = new_secret()

    signature = signature_header(
        msg_id="m", timestamp=datetime.now(UTC), body="{}", secrets=[secret, secret, ""]
    )

    assert len(signature.split(" ")) == 1


def test_a_request_is_never_signed_without_a_secret():
    with pytest.raises(ValueError):
        signature_header(msg_id="m", timestamp=datetime.now(UTC), body="{}", secrets=[])
