"""DATABASES["default"] from DATABASE_URL, for the small Django projects the
bench compares the service with (bench/ceiling, bench/peer): they run in
other virtualenvs or without the service's settings, so they cannot use
django-environ through webhooks_project.settings. Same connection settings
as the service (persistent connections)."""

import os
from urllib.parse import urlsplit


def default_database() -> dict:
    url = urlsplit(os.environ["DATABASE_URL"])
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": url.path.lstrip("/"),
        "USER": url.username or "",
        "PASSWORD": url.password or "",
        "HOST": url.hostname or "",
        "PORT": url.port or "",
        "CONN_MAX_AGE": 60,
    }
