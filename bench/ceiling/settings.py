"""Settings of the publish ceiling app: one view, no middleware, PostgreSQL
with the service's connection settings (persistent connections)."""

import os
from urllib.parse import urlsplit

_db = urlsplit(os.environ["DATABASE_URL"])

SECRET_KEY = "bench-ceiling"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "bench.ceiling.app"
WSGI_APPLICATION = "bench.ceiling.wsgi.application"
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _db.path.lstrip("/"),
        "USER": _db.username or "",
        "PASSWORD": _db.password or "",
        "HOST": _db.hostname or "",
        "PORT": _db.port or "",
        "CONN_MAX_AGE": 60,
    }
}
USE_TZ = True
