import pytest
from rest_framework.test import APIClient

from tests.support.api import assert_envelope
from webhooks_project.celery import app

pytestmark = pytest.mark.django_db


def test_health_is_200_when_database_and_broker_answer():
    response = APIClient().get("/health")

    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "ok"}


def test_health_is_503_when_the_broker_is_unreachable(monkeypatch):
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    monkeypatch.setattr(app.conf, "broker_write_url", "redis://127.0.0.1:1/0")

    response = APIClient().get("/health")

    assert response.status_code == 503
    assert response.json() == {"database": "ok", "broker": "down"}


def test_health_is_503_when_the_database_is_unreachable(monkeypatch):
    from django.db import OperationalError

    from webhooks_project import health

    class DownConnection:
        def cursor(self):
            raise OperationalError("connection refused")

    monkeypatch.setattr(health, "connection", DownConnection())

    response = APIClient().get("/health")

    assert response.status_code == 503
    assert response.json() == {"database": "down", "broker": "ok"}


def test_health_needs_no_key_and_refuses_other_methods():
    response = APIClient().post("/health")

    assert_envelope(response, 405)
    assert response["Allow"] == "GET, HEAD"
