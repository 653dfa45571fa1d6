"""Settings of the peer project (django-webhook's quickstart)."""

import os

from bench.django_db import default_database

SECRET_KEY = "bench-peer"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "bench.peer.urls"
WSGI_APPLICATION = "bench.peer.wsgi.application"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django_webhook",
    "bench.peer.parcels",
]
MIDDLEWARE: list[str] = []
DATABASES = {"default": default_database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
# Whitelist the models webhooks are sent for (django-webhook's quickstart).
DJANGO_WEBHOOK = {"MODELS": ["parcels.Parcel"]}
CELERY_BROKER_URL = os.environ["REDIS_URL"]
CELERY_TASK_IGNORE_RESULT = True
# Same as the service's workers: keep Django's connection between tasks.
CELERY_DB_REUSE_MAX = 1000
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
