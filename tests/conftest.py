import pytest
from rest_framework.test import APIClient

from subscriptions.services import create_api_key


def _api(client_name: str, scopes: list[str]) -> APIClient:
    api_key, key = create_api_key(client_name=client_name, scopes=scopes)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    api.client_obj = api_key.client
    api.key = key
    return api


@pytest.fixture
def make_api(db):
    """make_api("acme", ["subscriptions"]) -> an APIClient authenticated as that client.

    The client row is on `.client_obj`, the plaintext key on `.key`.
    """
    return _api


@pytest.fixture
def api(make_api) -> APIClient:
    """Client `acme` with scope subscriptions."""
    return make_api("acme", ["subscriptions"])


@pytest.fixture
def other_api(make_api) -> APIClient:
    """Another tenant, `globex`, with scope subscriptions."""
    return make_api("globex", ["subscriptions"])


@pytest.fixture
def publisher_api(make_api) -> APIClient:
    """The platform's publisher key (client `platform`, scope publish)."""
    return make_api("platform", ["publish"])


@pytest.fixture(autouse=True)
def _allow_local_destinations(settings, request):
    """Tests deliver to receivers on 127.0.0.1, which the SSRF guard blocks by
    default. Tests of the guard itself are marked `ssrf_guard` and keep it on."""
    if "ssrf_guard" not in request.keywords:
        settings.WEBHOOK_ALLOW_PRIVATE_DESTINATIONS = True


@pytest.fixture(autouse=True)
def _event_type_catalogue(request):
    """Transactional tests flush every table afterwards, the seeded event-type
    catalogue included; put it back for each test that needs committed data."""
    if (
        "transactional_db" in request.fixturenames
        or "live_server" in request.fixturenames
    ):
        import importlib

        from events.models import EventType

        request.getfixturevalue("transactional_db")

        seed = importlib.import_module("events.migrations.0002_seed_event_types")
        for name, subtypes, terminal, description in seed.CATALOGUE:
            EventType.objects.get_or_create(
                name=name,
                defaults={
                    "subtypes": subtypes,
                    "terminal": terminal,
                    "description": description,
                },
            )
