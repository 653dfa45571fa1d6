"""Settings of the publish ceiling app: one view, no middleware, PostgreSQL
with the service's connection settings (persistent connections)."""

from bench.django_db import default_database

SECRET_KEY = "bench-ceiling"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "bench.ceiling.app"
WSGI_APPLICATION = "bench.ceiling.wsgi.application"
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
DATABASES = {"default": default_database()}
USE_TZ = True
