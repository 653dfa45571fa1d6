"""The whole suite's settings (every test may deliver to 127.0.0.1; the
event-type catalogue is seeded again after a transactional test) and its
shared fixtures, as plugins from tests/support/fixtures/ (pytest reads
`pytest_plugins` in this root conftest only)."""

import pytest

pytest_plugins = [
    "tests.support.fixtures.api",
    "tests.support.fixtures.brokers",
    "tests.support.fixtures.pgbouncer",
    "tests.support.fixtures.receivers",
    "tests.support.fixtures.rows",
    "tests.support.fixtures.tls",
]


@pytest.fixture(autouse=True)
def _allow_local_destinations(settings, request):
    """Tests deliver to receivers on 127.0.0.1, which the SSRF guard blocks by
    default. Tests of the guard itself are marked `ssrf_guard` and keep it on."""
    if "ssrf_guard" not in request.keywords:
        settings.WEBHOOK_ALLOW_PRIVATE_DESTINATIONS = True


@pytest.fixture(autouse=True)
def _empty_lookup_caches():
    """Each test starts with this process's lookup caches empty: rows cached
    by an earlier test may have been rolled back (no signal says so)."""
    from webhooks_project import lookups

    lookups.clear_all()


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
