"""GET /health: is the database reachable, is the broker reachable. No auth."""

from django.db import connection
from django.http import HttpRequest, JsonResponse

from webhooks_project import errors
from webhooks_project.celery import app


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        return False


def _broker_ok() -> bool:
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return True
    except Exception:
        return False


def health(request: HttpRequest) -> JsonResponse:
    if request.method not in ("GET", "HEAD"):
        return errors.method_not_allowed(request, ["GET", "HEAD"])
    checks = {
        "database": "ok" if _database_ok() else "down",
        "broker": "ok" if _broker_ok() else "down",
    }
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(checks, status=200 if healthy else 503)
