"""Model fields whose values are encrypted in the database (see crypto.py)."""

import json
from typing import Any

from django.db import models

from webhooks_project import crypto


class EncryptedTextField(models.TextField):
    """A text value stored as a Fernet token; Python code sees the plaintext."""

    # Found by `manage.py reencrypt_secrets` (crypto.encrypted_fields).
    encrypted_at_rest = True

    def from_db_value(
        self, value: str | None, expression: Any, connection: Any
    ) -> str | None:
        if value is None or value == "":
            return value
        return crypto.decrypt(value)

    def get_prep_value(self, value: Any) -> str | None:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return crypto.encrypt(value)


class EncryptedJSONField(models.TextField):
    """A JSON value stored encrypted as a Fernet token of its JSON text."""

    encrypted_at_rest = True

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return None
        return json.loads(crypto.decrypt(value))

    def to_python(self, value: Any) -> Any:
        return value

    def get_prep_value(self, value: Any) -> str | None:
        if value is None:
            return None
        return crypto.encrypt(json.dumps(value))
